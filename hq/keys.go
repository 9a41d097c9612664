package hq

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/edgepos/edgepos/sync/wire"
)

// keyring holds HQ's Ed25519 coupon signing keys, one file per key under
// DataDir/coupon-keys (the 32-byte seed, hex, mode 0600) and a "current"
// file naming the key new coupons are signed with.
type keyring struct {
	dir     string
	mu      sync.Mutex
	keys    map[string]ed25519.PrivateKey
	current string
}

const keyDirName = "coupon-keys"

func openKeyring(dataDir string) (*keyring, error) {
	dir := filepath.Join(dataDir, keyDirName)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("coupon keys: %w", err)
	}
	k := &keyring{dir: dir, keys: map[string]ed25519.PrivateKey{}}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("coupon keys: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".tmp") {
			os.Remove(filepath.Join(dir, name)) // a write that never finished
			continue
		}
		kid, ok := strings.CutSuffix(name, ".key")
		if !ok {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("coupon keys: %w", err)
		}
		seed, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(seed) != ed25519.SeedSize {
			return nil, fmt.Errorf("coupon keys: %s is not a hex Ed25519 seed", name)
		}
		k.keys[kid] = ed25519.NewKeyFromSeed(seed)
	}
	cur, err := os.ReadFile(filepath.Join(dir, "current"))
	switch {
	case err == nil:
		k.current = strings.TrimSpace(string(cur))
		if _, ok := k.keys[k.current]; !ok {
			return nil, fmt.Errorf("coupon keys: current key %q has no key file", k.current)
		}
	case errors.Is(err, os.ErrNotExist):
	default:
		return nil, fmt.Errorf("coupon keys: %w", err)
	}
	return k, nil
}

// writeFile writes data to dir/name through a temp file: fsync, rename,
// fsync the directory, so a crash leaves the old file or the new one.
func writeFile(dir, name string, data []byte) error {
	tmp, err := os.CreateTemp(dir, "."+name+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// generate makes and saves a new key; it does not make it current.
func (k *keyring) generate(now time.Time) (string, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	var rnd [4]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return "", err
	}
	kid := "hq-" + now.UTC().Format("20060102") + "-" + hex.EncodeToString(rnd[:])
	if err := writeFile(k.dir, kid+".key", []byte(hex.EncodeToString(priv.Seed())+"\n")); err != nil {
		return "", fmt.Errorf("save coupon key: %w", err)
	}
	k.mu.Lock()
	k.keys[kid] = priv
	k.mu.Unlock()
	return kid, nil
}

func (k *keyring) setCurrent(kid string) error {
	if err := writeFile(k.dir, "current", []byte(kid+"\n")); err != nil {
		return fmt.Errorf("save current coupon key: %w", err)
	}
	k.mu.Lock()
	k.current = kid
	k.mu.Unlock()
	return nil
}

func (k *keyring) signer() (string, ed25519.PrivateKey, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	p, ok := k.keys[k.current]
	return k.current, p, ok
}

func (k *keyring) public() map[string]ed25519.PublicKey {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make(map[string]ed25519.PublicKey, len(k.keys))
	for id, p := range k.keys {
		out[id] = p.Public().(ed25519.PublicKey)
	}
	return out
}

// publishKeys makes sure every key is in the change feed (a crash between
// saving a key and publishing it is repaired here) and that there is a
// current key, published before it signs anything.
func (s *Service) publishKeys(ctx context.Context) error {
	if s.keys.current == "" {
		if _, err := s.keys.generate(s.opts.Now()); err != nil {
			return err
		}
	}
	pubs := s.keys.public()
	ids := make([]string, 0, len(pubs))
	for id := range pubs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var newest string
	for _, id := range ids {
		if _, err := s.store.LatestChange(ctx, AllStores, wire.ChangeCouponKey, id); err == nil {
			newest = max(newest, id)
			continue
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		if _, err := s.appendAndPublish(ctx, []ChangeInput{keyChange(id, pubs[id], s.opts.Now())}); err != nil {
			return err
		}
		newest = max(newest, id)
	}
	if s.keys.current == "" {
		return s.keys.setCurrent(newest)
	}
	return nil
}

func keyChange(kid string, pub ed25519.PublicKey, now time.Time) ChangeInput {
	data, _ := json.Marshal(wire.CouponKeyChange{KeyID: kid, PublicKey: pub})
	return ChangeInput{Store: AllStores, Kind: wire.ChangeCouponKey, Key: kid, Op: wire.OpUpsert, Data: data, At: now.UTC()}
}

// RotateCouponKey makes a new signing key: it is saved, published to every
// store through the feed, and only then used for new coupons.
func (s *Service) RotateCouponKey(ctx context.Context) (string, error) {
	if s.keys == nil {
		return "", errors.New("rotate coupon key: no data dir")
	}
	kid, err := s.keys.generate(s.opts.Now())
	if err != nil {
		return "", fmt.Errorf("rotate coupon key: %w", err)
	}
	if _, err := s.appendAndPublish(ctx, []ChangeInput{keyChange(kid, s.keys.public()[kid], s.opts.Now())}); err != nil {
		return "", fmt.Errorf("rotate coupon key: %w", err)
	}
	if err := s.keys.setCurrent(kid); err != nil {
		return "", fmt.Errorf("rotate coupon key: %w", err)
	}
	s.log.Info("coupon signing key rotated", "key_id", kid)
	return kid, nil
}

// CouponKeys returns HQ's coupon public keys by key id.
func (s *Service) CouponKeys() map[string]ed25519.PublicKey {
	if s.keys == nil {
		return nil
	}
	return s.keys.public()
}

// appendAndPublish stores changes in the feed and sends them to their
// stores now. A publish failure is logged: stores catch up on hello.
func (s *Service) appendAndPublish(ctx context.Context, changes []ChangeInput) ([]FeedEntry, error) {
	es, err := s.store.AppendChanges(ctx, changes)
	if err != nil {
		return nil, err
	}
	if err := s.publishEntries(ctx, es); err != nil {
		s.log.Error("publish change feed", "err", err)
	}
	return es, nil
}
