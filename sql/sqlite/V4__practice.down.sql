DROP TABLE practice_history;
DROP TABLE practice_sessions;
