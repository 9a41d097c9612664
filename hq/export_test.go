package hq

import "github.com/edgepos/edgepos/sync/wire"

// SetAfterCommit installs the after-commit fault seam (tests only).
func SetAfterCommit(s *Service, f func(kind wire.Kind, store, terminal string) error) {
	s.afterCommit = f
}

// SetBeforeStore installs the before-store fault seam (tests only).
func SetBeforeStore(s *Service, f func(store, terminal string) error) { s.beforeStore = f }
