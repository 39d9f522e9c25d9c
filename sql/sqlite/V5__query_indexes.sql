CREATE INDEX ix_poses_difficulty ON poses (difficulty);
CREATE INDEX ix_practice_sessions_user_id ON practice_sessions (user_id);
CREATE INDEX ix_practice_history_user_id_practiced_at ON practice_history (user_id, practiced_at);
