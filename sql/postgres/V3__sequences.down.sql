DROP TABLE sequence_poses;
DROP TABLE sequences;
