CREATE TABLE practice_sessions (
    id INTEGER NOT NULL PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    sequence_id INTEGER REFERENCES sequences (id) ON DELETE SET NULL,
    started_at DATETIME NOT NULL,
    completed_at DATETIME,
    duration_seconds INTEGER,
    completed BOOLEAN NOT NULL DEFAULT 0,
    rating REAL,
    notes TEXT,
    CONSTRAINT ck_practice_sessions_rating CHECK (rating BETWEEN 1 AND 5)
);
CREATE TABLE practice_history (
    id INTEGER NOT NULL PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id INTEGER REFERENCES practice_sessions (id) ON DELETE CASCADE,
    pose_id INTEGER REFERENCES poses (id) ON DELETE SET NULL,
    practiced_at DATETIME NOT NULL,
    duration_seconds REAL,
    notes TEXT
);
