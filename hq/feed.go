package hq

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/edgepos/edgepos/sync/wire"
)

// publishFeed sends store's change-feed entries above after, in messages of
// at most wire.MaxChangesPerMessage. Each message's After is the version of
// the store's entry before its first one, so a terminal can tell a gap.
func (s *Service) publishFeed(ctx context.Context, store string, after int64) error {
	latest, err := s.store.FeedLatest(ctx, store)
	if err != nil {
		return err
	}
	first := true
	for after < latest {
		chs, err := s.store.FeedSince(ctx, store, after, wire.MaxChangesPerMessage)
		if err != nil {
			return err
		}
		if len(chs) == 0 {
			return nil
		}
		prev := after
		if first {
			if prev, err = s.store.FeedBefore(ctx, store, chs[0].Version); err != nil {
				return err
			}
			first = false
		}
		s.publish(s.topics.Changes(store), wire.Changes{V: wire.SchemaVersion, Store: store, After: prev, Latest: latest, Changes: chs, At: s.opts.Now().UTC()})
		after = chs[len(chs)-1].Version
	}
	return nil
}

// publishEntries sends freshly appended entries to the stores they target
// (every known store for AllStores). Stores HQ has not heard from yet get
// them on their first hello.
func (s *Service) publishEntries(ctx context.Context, es []FeedEntry) error {
	if len(es) == 0 || s.client == nil {
		return nil
	}
	per := map[string][]wire.Change{}
	var all []wire.Change
	for _, e := range es {
		if e.Store == AllStores {
			all = append(all, e.Change)
			continue
		}
		per[e.Store] = append(per[e.Store], e.Change)
	}
	if len(all) > 0 {
		stores, err := s.store.Stores(ctx)
		if err != nil {
			return err
		}
		for _, st := range stores {
			per[st] = append(per[st], all...)
		}
	}
	for store, chs := range per {
		// Entries were appended in version order; merge keeps it.
		sortChanges(chs)
		for len(chs) > 0 {
			n := min(len(chs), wire.MaxChangesPerMessage)
			part := chs[:n]
			chs = chs[n:]
			prev, err := s.store.FeedBefore(ctx, store, part[0].Version)
			if err != nil {
				return fmt.Errorf("publish feed to %s: %w", store, err)
			}
			latest, err := s.store.FeedLatest(ctx, store)
			if err != nil {
				return fmt.Errorf("publish feed to %s: %w", store, err)
			}
			// A message must carry every entry of the store between After
			// and its last: if other entries slipped in between (another
			// API call), send the store's whole range instead.
			full, err := s.store.FeedSince(ctx, store, prev, wire.MaxChangesPerMessage)
			if err != nil {
				return fmt.Errorf("publish feed to %s: %w", store, err)
			}
			last := part[len(part)-1].Version
			var msg []wire.Change
			for _, c := range full {
				if c.Version <= last {
					msg = append(msg, c)
				}
			}
			s.publish(s.topics.Changes(store), wire.Changes{V: wire.SchemaVersion, Store: store, After: prev, Latest: latest, Changes: msg, At: time.Now().UTC()})
		}
	}
	return nil
}

func sortChanges(chs []wire.Change) {
	slices.SortFunc(chs, func(a, b wire.Change) int { return cmp.Compare(a.Version, b.Version) })
}
