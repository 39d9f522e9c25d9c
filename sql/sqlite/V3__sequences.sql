CREATE TABLE sequences (
    id INTEGER NOT NULL PRIMARY KEY,
    name VARCHAR(255) NOT NULL,
    description TEXT,
    difficulty VARCHAR(20),
    duration_minutes INTEGER,
    is_public BOOLEAN NOT NULL DEFAULT 0,
    user_id INTEGER REFERENCES users (id) ON DELETE CASCADE,
    created_at DATETIME NOT NULL DEFAULT (CURRENT_TIMESTAMP),
    updated_at DATETIME,
    CONSTRAINT ck_sequences_difficulty CHECK (difficulty IN ('beginner', 'intermediate', 'advanced'))
);
CREATE TABLE sequence_poses (
    id INTEGER NOT NULL PRIMARY KEY,
    sequence_id INTEGER NOT NULL REFERENCES sequences (id) ON DELETE CASCADE,
    pose_id INTEGER NOT NULL REFERENCES poses (id) ON DELETE RESTRICT,
    position INTEGER NOT NULL,
    duration_seconds INTEGER,
    CONSTRAINT uq_sequence_poses_sequence_id_position UNIQUE (sequence_id, position)
);
