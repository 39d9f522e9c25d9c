DROP TABLE poses;
