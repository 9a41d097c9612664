package sqlcore

import (
	"context"
	"fmt"
	"time"

	"github.com/edgepos/edgepos/hq"
	"github.com/edgepos/edgepos/sync/wire"
)

// AppendChanges implements hq.Store.
func (c *Core) AppendChanges(ctx context.Context, changes []hq.ChangeInput) ([]hq.FeedEntry, error) {
	var out []hq.FeedEntry
	err := c.inTx(ctx, "append changes", func(tx Tx) error {
		var err error
		out, err = c.appendChanges(ctx, tx, changes)
		return err
	})
	return out, err
}

func (c *Core) appendChanges(ctx context.Context, tx Tx, changes []hq.ChangeInput) ([]hq.FeedEntry, error) {
	if len(changes) == 0 {
		return nil, nil
	}
	// Versions must become visible in order: a terminal that saw version
	// 10 skips 9 for good. One appender at a time makes commit order equal
	// version order.
	if err := c.lock(ctx, tx, "feed"); err != nil {
		return nil, fmt.Errorf("lock feed: %w", err)
	}
	out := make([]hq.FeedEntry, 0, len(changes))
	for _, ch := range changes {
		if ch.Store == "" {
			ch.Store = hq.AllStores
		}
		if ch.At.IsZero() {
			ch.At = time.Now()
		}
		data := []byte(ch.Data)
		if data == nil {
			data = []byte{}
		}
		var v int64
		err := tx.QueryRow(ctx, "INSERT INTO change_feed(store, kind, key, op, data, at) VALUES(?, ?, ?, ?, ?, ?) RETURNING version",
			ch.Store, ch.Kind, ch.Key, ch.Op, data, ch.At.UTC()).Scan(&v)
		if err != nil {
			return nil, fmt.Errorf("append %s %s: %w", ch.Kind, ch.Key, err)
		}
		out = append(out, hq.FeedEntry{Store: ch.Store, Change: wire.Change{Version: v, Kind: ch.Kind, Key: ch.Key, Op: ch.Op, Data: ch.Data, At: ch.At.UTC()}})
	}
	return out, nil
}

// FeedSince implements hq.Store.
func (c *Core) FeedSince(ctx context.Context, store string, after int64, limit int) ([]wire.Change, error) {
	if limit <= 0 {
		limit = wire.MaxChangesPerMessage
	}
	var out []wire.Change
	err := scanEach(ctx, c.db, func(r Rows) error {
		var ch wire.Change
		var data []byte
		if err := r.Scan(&ch.Version, &ch.Kind, &ch.Key, &ch.Op, &data, &ch.At); err != nil {
			return err
		}
		if len(data) > 0 {
			ch.Data = data
		}
		ch.At = ch.At.UTC()
		out = append(out, ch)
		return nil
	}, "SELECT version, kind, key, op, data, at FROM change_feed WHERE version > ? AND (store = ? OR store = '*') ORDER BY version LIMIT ?",
		after, store, limit)
	if err != nil {
		return nil, fmt.Errorf("read feed of %s: %w", store, err)
	}
	return out, nil
}

func feedLatest(ctx context.Context, q Querier, store string) (int64, error) {
	var v int64
	err := q.QueryRow(ctx, "SELECT COALESCE(MAX(version), 0) FROM change_feed WHERE store = ? OR store = '*'", store).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("read feed version of %s: %w", store, err)
	}
	return v, nil
}

// FeedLatest implements hq.Store.
func (c *Core) FeedLatest(ctx context.Context, store string) (int64, error) {
	return feedLatest(ctx, c.db, store)
}

// FeedBefore implements hq.Store.
func (c *Core) FeedBefore(ctx context.Context, store string, version int64) (int64, error) {
	var v int64
	err := c.db.QueryRow(ctx, "SELECT COALESCE(MAX(version), 0) FROM change_feed WHERE version < ? AND (store = ? OR store = '*')", version, store).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("read feed of %s: %w", store, err)
	}
	return v, nil
}

// LatestChange implements hq.Store.
func (c *Core) LatestChange(ctx context.Context, store, kind, key string) (hq.FeedEntry, error) {
	var e hq.FeedEntry
	var data []byte
	err := c.db.QueryRow(ctx, "SELECT version, store, kind, key, op, data, at FROM change_feed WHERE kind = ? AND key = ? AND (store = ? OR store = '*') ORDER BY version DESC LIMIT 1",
		kind, key, store).Scan(&e.Version, &e.Store, &e.Kind, &e.Key, &e.Op, &data, &e.At)
	if isNoRows(err) {
		return e, fmt.Errorf("%s %s: %w", kind, key, hq.ErrNotFound)
	}
	if err != nil {
		return e, fmt.Errorf("read %s %s: %w", kind, key, err)
	}
	if len(data) > 0 {
		e.Data = data
	}
	e.At = e.At.UTC()
	return e, nil
}
