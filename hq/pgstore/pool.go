package pgstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// pool is a small pool of pgx connections. pgxpool needs
// github.com/jackc/puddle/v2, which go.sum does not carry yet; this keeps
// to pgx.Conn (native protocol, CopyFrom) with a bound on open connections.
type pool struct {
	cfg  *pgx.ConnConfig
	idle chan *pgx.Conn
	slot chan struct{}
}

func newPool(cfg *pgx.ConnConfig, max int) *pool {
	return &pool{cfg: cfg, idle: make(chan *pgx.Conn, max), slot: make(chan struct{}, max)}
}

// acquire returns a connection; the caller must release it.
func (p *pool) acquire(ctx context.Context) (*pgx.Conn, error) {
	select {
	case p.slot <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	for {
		select {
		case c := <-p.idle:
			if c.IsClosed() {
				continue
			}
			return c, nil
		default:
		}
		c, err := pgx.ConnectConfig(ctx, p.cfg)
		if err != nil {
			<-p.slot
			return nil, fmt.Errorf("connect: %w", err)
		}
		return c, nil
	}
}

// release returns c to the pool, or closes it when it is broken or still
// busy (a cancelled query).
func (p *pool) release(c *pgx.Conn) {
	defer func() { <-p.slot }()
	if c.IsClosed() || c.PgConn().IsBusy() || c.PgConn().TxStatus() != 'I' {
		c.Close(context.Background())
		return
	}
	select {
	case p.idle <- c:
	default:
		c.Close(context.Background())
	}
}

func (p *pool) close() {
	for {
		select {
		case c := <-p.idle:
			c.Close(context.Background())
		default:
			return
		}
	}
}
