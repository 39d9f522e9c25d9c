CREATE TABLE poses (
    id INTEGER NOT NULL PRIMARY KEY,
    name VARCHAR(255) NOT NULL,
    sanskrit_name VARCHAR(255),
    description TEXT,
    difficulty VARCHAR(20) NOT NULL,
    category VARCHAR(50),
    benefits JSON,
    metadata JSON NOT NULL DEFAULT '{}',
    image BLOB,
    duration_seconds INTEGER,
    created_at DATETIME NOT NULL DEFAULT (CURRENT_TIMESTAMP),
    CONSTRAINT uq_poses_name UNIQUE (name),
    CONSTRAINT ck_poses_difficulty CHECK (difficulty IN ('beginner', 'intermediate', 'advanced'))
);
