package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edgepos/edgepos/hq"
	"github.com/edgepos/edgepos/hq/pgstore"
)

// pgAdmin creates the schemas of one run on a PostgreSQL server and drops
// them when closed, so runs never see each other's rows (the same rule
// internal/testenv.PGSchema keeps for tests).
type pgAdmin struct {
	url     string
	conn    *pgx.Conn
	run     string
	schemas []string
}

func newPGAdmin(ctx context.Context, url string) (*pgAdmin, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(cctx, url)
	if err != nil {
		return nil, fmt.Errorf("postgres %s: %w", redactURL(url), err)
	}
	return &pgAdmin{url: url, conn: c, run: fmt.Sprintf("%d_%d", time.Now().Unix(), rand.IntN(1_000_000))}, nil
}

// schema creates the schema <prefix>_<run>_<name> and returns its name.
func (p *pgAdmin) schema(ctx context.Context, prefix, name string) (string, error) {
	s := fmt.Sprintf("%s_%s_%s", prefix, p.run, name)
	if _, err := p.conn.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{s}.Sanitize()); err != nil {
		return "", fmt.Errorf("create schema %s: %w", s, err)
	}
	p.schemas = append(p.schemas, s)
	return s, nil
}

// open creates a fresh schema and opens an HQ store in it.
func (p *pgAdmin) open(ctx context.Context, prefix, name string) (hq.Store, error) {
	s, err := p.schema(ctx, prefix, name)
	if err != nil {
		return nil, err
	}
	return pgstore.Open(ctx, p.url, pgstore.Options{Schema: s})
}

// close drops every schema this run created.
func (p *pgAdmin) close(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	var first error
	for _, s := range p.schemas {
		if _, err := p.conn.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{s}.Sanitize()+" CASCADE"); err != nil && first == nil {
			first = fmt.Errorf("drop schema %s: %w", s, err)
		}
	}
	p.conn.Close(ctx)
	return first
}

// redactURL hides a password in a connection URL for messages.
func redactURL(u string) string {
	cfg, err := pgx.ParseConfig(u)
	if err != nil || cfg.Password == "" {
		return u
	}
	return fmt.Sprintf("postgres://%s:***@%s:%d/%s", cfg.User, cfg.Host, cfg.Port, cfg.Database)
}
