package bench

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/google/uuid"

	"github.com/edgepos/edgepos/hq"
	"github.com/edgepos/edgepos/hq/sqlitestore"
	"github.com/edgepos/edgepos/internal/embedbroker"
	"github.com/edgepos/edgepos/localdb"
	"github.com/edgepos/edgepos/sync/link"
	"github.com/edgepos/edgepos/sync/wire"
)

// SaleEvent returns a realistic sale.completed payload (about 400 bytes, 2
// lines) for sale i of a terminal.
func SaleEvent(store, terminal string, i int, at time.Time) wire.SaleCompleted {
	return wire.SaleCompleted{
		SaleID:      uuid.Must(uuid.NewV7()).String(),
		Receipt:     fmt.Sprintf("%s-%06d", terminal, i),
		BusinessDay: at.Format(time.DateOnly),
		CompletedAt: at.UTC(),
		Cashier:     "1001",
		Currency:    "CNY",
		Subtotal:    1550, Tax: 178, Total: 1550,
		Lines: []wire.SaleLine{
			{Line: 1, SKU: "6901234567892", Name: "Oolong tea 500ml", Qty: 1000, UnitPrice: 450, Tax: 52, Total: 450},
			{Line: 2, SKU: "2000001", Name: "Apples", Qty: 1532, UnitPrice: 718, Tax: 126, Total: 1100},
		},
		Tenders: []wire.Tender{{Kind: "cash", Amount: 2000}},
	}
}

// FillOutbox appends n sale events to db in transactions of 500 rows.
func FillOutbox(ctx context.Context, db *localdb.DB, store, terminal string, n int) error {
	now := time.Now().UTC()
	for done := 0; done < n; {
		k := min(500, n-done)
		err := db.WriteTx(ctx, func(tx *sql.Tx) error {
			for i := 0; i < k; i++ {
				if _, err := localdb.AppendEvent(ctx, tx, wire.EventSaleCompleted, SaleEvent(store, terminal, done+i+1, now), now); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("fill outbox: %w", err)
		}
		done += k
	}
	return nil
}

// CatchupResult holds the catch-up figures of one run.
type CatchupResult struct {
	Events      int
	Ours        time.Duration // outbox → HQ committed → acked, through link + broker + HQ
	RawPublish  time.Duration // the same batches over paho QoS 1, no database
	RawInsert   time.Duration // HQ's store inserting the same batches, no MQTT
	BatchEvents int
	// Process CPU time (all goroutines, GC included) during Ours and
	// RawInsert.
	OursCPU, RawInsertCPU time.Duration
}

// CatchupOptions tune CatchupWith. Zero values are the benchmark's defaults.
type CatchupOptions struct {
	// Events queued at the terminal before the link starts (default 100k).
	Events int
	// BatchEvents per batch, for the link and both raw limits (default 500).
	BatchEvents int
	// Window is the link's window of batches in flight (default 8).
	Window int
	// OpenStore opens a fresh, empty HQ store; it is called twice, with
	// name "raw" (raw limit b) and "hq" (the service). Default: a SQLite
	// file name+".db" in dir.
	OpenStore func(ctx context.Context, name string) (hq.Store, error)
	// Logger receives HQ's and the link's messages (a resend after a lost
	// batch shows there); default discards.
	Logger *slog.Logger
	// Phase, if set, is called as each measured phase starts ("raw-publish",
	// "raw-insert", "catchup"); the function it returns is called as the
	// phase ends. Benchmarks use it to profile one phase alone.
	Phase func(name string) (end func())
}

// Catchup measures a terminal catching up n queued events to an HQ on
// SQLite over the embedded broker, and the two raw limits beside it.
func Catchup(ctx context.Context, dir string, n, batchEvents int) (CatchupResult, error) {
	return CatchupWith(ctx, dir, CatchupOptions{Events: n, BatchEvents: batchEvents})
}

// CatchupWith is Catchup with options: another HQ store (PostgreSQL) or a
// hook around each measured phase.
func CatchupWith(ctx context.Context, dir string, o CatchupOptions) (CatchupResult, error) {
	if o.Events <= 0 {
		o.Events = 100_000
	}
	if o.BatchEvents <= 0 {
		o.BatchEvents = 500
	}
	if o.Window <= 0 {
		o.Window = 8
	}
	if o.OpenStore == nil {
		o.OpenStore = func(ctx context.Context, name string) (hq.Store, error) {
			return sqlitestore.Open(ctx, filepath.Join(dir, name+".db"), sqlitestore.Options{})
		}
	}
	phase := func(name string) func() {
		if o.Phase == nil {
			return func() {}
		}
		return o.Phase(name)
	}
	n, batchEvents := o.Events, o.BatchEvents
	res := CatchupResult{Events: n, BatchEvents: batchEvents}
	const store, terminal = "S001", "T1"
	db, err := localdb.Open(ctx, filepath.Join(dir, "pos.db"), localdb.Options{})
	if err != nil {
		return res, err
	}
	defer db.Close(ctx)
	if err := FillOutbox(ctx, db, store, terminal, n); err != nil {
		return res, err
	}

	// Raw (a) and (b) use the very batches the link will send.
	var batches []*wire.Batch
	var payloads [][]byte
	for after := int64(0); ; {
		evs, err := db.NextEvents(ctx, after, batchEvents, 0)
		if err != nil {
			return res, err
		}
		if len(evs) == 0 {
			break
		}
		b := &wire.Batch{V: wire.SchemaVersion, Store: store, Terminal: terminal, DBID: db.ID(), SentAt: time.Now().UTC()}
		for _, e := range evs {
			b.Events = append(b.Events, wire.Event{Seq: e.Seq, ID: e.ID, Type: e.Type, At: e.CreatedAt, Payload: e.Payload})
		}
		p, err := wire.Encode(b)
		if err != nil {
			return res, err
		}
		batches, payloads = append(batches, b), append(payloads, p)
		after = evs[len(evs)-1].Seq
	}

	broker, err := embedbroker.Start(embedbroker.Options{Privileged: []string{"hq"}})
	if err != nil {
		return res, err
	}
	defer broker.Close()

	end := phase("raw-publish")
	res.RawPublish, err = RawPublish(ctx, broker.URL(), "bench/raw", payloads, 4)
	end()
	if err != nil {
		return res, err
	}

	raw, err := o.OpenStore(ctx, "raw")
	if err != nil {
		return res, err
	}
	end = phase("raw-insert")
	start, cpu0 := time.Now(), CPUTime()
	for _, b := range batches {
		if _, err := raw.IngestBatch(ctx, b, nil, time.Now().UTC()); err != nil {
			end()
			raw.Close(ctx)
			return res, err
		}
	}
	res.RawInsert, res.RawInsertCPU = time.Since(start), CPUTime()-cpu0
	end()
	raw.Close(ctx)

	svc := hq.New(hq.Options{
		OpenStore: func(ctx context.Context) (hq.Store, error) {
			return o.OpenStore(ctx, "hq")
		},
		DataDir:  filepath.Join(dir, "hq"),
		Broker:   broker.URL(),
		Username: "hq",
		Logger:   o.Logger,
	})
	if err := svc.Open(ctx); err != nil {
		return res, err
	}
	defer svc.Close(context.WithoutCancel(ctx))

	l := link.New(db, link.Options{Store: store, Terminal: terminal, Broker: broker.URL(),
		BatchEvents: batchEvents, BatchBytes: 4 << 20, Window: o.Window, Poll: 5 * time.Millisecond, Logger: o.Logger})
	end = phase("catchup")
	defer func() { end() }() // on an error return; the normal path ends it at once
	start, cpu0 = time.Now(), CPUTime()
	if err := l.Open(ctx); err != nil {
		return res, err
	}
	defer l.Close(context.WithoutCancel(ctx))
	deadline := time.Now().Add(5 * time.Minute)
	for {
		st, err := l.State(ctx)
		if err != nil {
			return res, err
		}
		if st.Backlog == 0 {
			break
		}
		if time.Now().After(deadline) {
			return res, fmt.Errorf("catch-up: %d events still unacked after 5 minutes", st.Backlog)
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	res.Ours, res.OursCPU = time.Since(start), CPUTime()-cpu0
	end()
	end = func() {}
	sales, err := svc.Store().Sales(ctx, store, "")
	if err != nil {
		return res, err
	}
	var got int64
	for _, s := range sales {
		got += s.Count
	}
	if got != int64(n) {
		return res, fmt.Errorf("catch-up: HQ holds %d sales, want %d", got, n)
	}
	return res, nil
}

// Figures turns a catch-up result into report figures.
func (r CatchupResult) Figures() []Figure {
	ours := Rate(r.Events, r.Ours)
	pub, ins := Rate(r.Events, r.RawPublish), Rate(r.Events, r.RawInsert)
	lower, name := pub, "paho QoS 1, no database"
	if ins < pub {
		lower, name = ins, "HQ store insert, no MQTT"
	}
	return []Figure{
		Figure{Scenario: "catchup", Metric: fmt.Sprintf("%d events outbox→HQ acked", r.Events), Unit: "events/s", Ours: ours, Goal: "≥ 0.5 × lower raw; < 5 s"}.WithRaw(name, lower),
		Figure{Scenario: "catchup", Metric: "total time", Unit: "s", Ours: r.Ours.Seconds(), Goal: "< 5 s for 100k"},
		Figure{Scenario: "catchup", Metric: "raw: paho QoS 1, no database", Unit: "events/s", Ours: pub},
		Figure{Scenario: "catchup", Metric: "raw: HQ store insert, no MQTT", Unit: "events/s", Ours: ins},
	}
}
