package agent

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/edgepos/edgepos/localdb"
	"github.com/edgepos/edgepos/sync/wire"
)

const crashChildEnv = "EDGEPOS_CRASH_CHILD_DB"

// TestCrashChild is the child of TestCrashKillNineLosesNoCompletedSale: it
// sells 5-line sales forever and prints each receipt only after
// CompleteSale returned. It does nothing in a normal run.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashChildEnv)
	if path == "" {
		t.Skip("child process of the crash test")
	}
	ctx := context.Background()
	db, err := localdb.Open(ctx, path, localdb.Options{})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(3)
	}
	l, err := NewLedger(db, LedgerConfig{Store: "S001", Terminal: "T1", TaxInclusive: true, BcryptCost: bcrypt.MinCost})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(3)
	}
	if ps, _ := l.Products(ctx, "TEA500", 1); len(ps) == 0 {
		if err := SeedDemoCatalog(ctx, l); err != nil {
			fmt.Println("ERR", err)
			os.Exit(3)
		}
	}
	skus := []string{"TEA500", "NOODLE", "MILK1L", "BREAD", "WATER", "RICE5", "CHOCO"}
	for {
		s, err := l.OpenSale(ctx, DemoCashier)
		if err != nil {
			fmt.Println("ERR", err)
			os.Exit(3)
		}
		for i := 0; i < 5; i++ {
			if s, err = l.AddItem(ctx, s.ID, skus[rand.IntN(len(skus))], int64(1+rand.IntN(3))*1000); err != nil {
				fmt.Println("ERR", err)
				os.Exit(3)
			}
		}
		if s, err = l.AddTender(s.ID, Tender{Kind: TenderCash, Amount: s.Total}); err != nil {
			fmt.Println("ERR", err)
			os.Exit(3)
		}
		done, err := l.CompleteSale(ctx, s.ID, "")
		if err != nil {
			fmt.Println("ERR", err)
			os.Exit(3)
		}
		// Unbuffered: the line is out before the next sale starts.
		fmt.Fprintf(os.Stdout, "DONE %s %s %d\n", done.ID, done.Receipt, len(done.Lines))
	}
}

// TestCrashKillNineLosesNoCompletedSale kills a selling child process with
// SIGKILL at random moments, many times, and proves after each restart:
// every sale the child reported completed is there exactly once with all its
// lines and its outbox event, no half sale exists, and the outbox seq has no
// gaps.
func TestCrashKillNineLosesNoCompletedSale(t *testing.T) {
	if testing.Short() {
		t.Skip("kills child processes")
	}
	path := filepath.Join(t.TempDir(), "pos.db")
	reported := map[string]string{} // sale id → receipt
	reportedLines := map[string]int{}
	rounds := 25
	for round := 0; round < rounds; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		lines := make(chan string, 1024)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
		// Wait for the first sale, then kill at a random moment.
		first := time.After(30 * time.Second)
		killAt := time.Duration(20+rand.IntN(250)) * time.Millisecond
		var timer <-chan time.Time
		killed := false
		for !killed {
			select {
			case ln, ok := <-lines:
				if !ok {
					t.Fatalf("round %d: child exited early", round)
				}
				require.False(t, strings.HasPrefix(ln, "ERR"), "child: %s", ln)
				if f := strings.Fields(ln); len(f) == 4 && f[0] == "DONE" {
					reported[f[1]] = f[2]
					var n int
					fmt.Sscan(f[3], &n)
					reportedLines[f[1]] = n
					if timer == nil {
						timer = time.After(killAt)
					}
				}
			case <-timer:
				require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
				killed = true
			case <-first:
				if timer == nil {
					t.Fatalf("round %d: child sold nothing in 30s", round)
				}
			}
		}
		for ln := range lines { // what the child wrote before it died
			if f := strings.Fields(ln); len(f) == 4 && f[0] == "DONE" {
				reported[f[1]] = f[2]
				var n int
				fmt.Sscan(f[3], &n)
				reportedLines[f[1]] = n
			}
		}
		cmd.Wait()
		checkLedgerAfterCrash(t, path, reported, reportedLines)
	}
	t.Logf("%d rounds, %d sales reported completed, all present exactly once", rounds, len(reported))
}

func checkLedgerAfterCrash(t *testing.T, path string, reported map[string]string, reportedLines map[string]int) {
	t.Helper()
	ctx := context.Background()
	db, err := localdb.Open(ctx, path, localdb.Options{})
	require.NoError(t, err)
	defer db.Close(ctx)

	// Read each table once; the checks are set comparisons.
	events := map[string]int{} // sale id → sale.completed events
	rows, err := db.Read.Query("SELECT json_extract(payload, '$.sale_id') FROM outbox WHERE type = ?", wire.EventSaleCompleted)
	require.NoError(t, err)
	for rows.Next() {
		var id string
		require.NoError(t, rows.Scan(&id))
		events[id]++
	}
	require.NoError(t, rows.Err())
	rows.Close()
	type saleRow struct {
		receipt               string
		lines, tenders, print int
	}
	sales := map[string]*saleRow{}
	rows, err = db.Read.Query(`SELECT s.id, s.receipt, (SELECT COUNT(*) FROM sale_lines l WHERE l.sale_id = s.id),
		(SELECT COUNT(*) FROM sale_tenders t WHERE t.sale_id = s.id), (SELECT COUNT(*) FROM print_jobs p WHERE p.id = s.id)
		FROM sales s WHERE s.state = 'completed'`)
	require.NoError(t, err)
	for rows.Next() {
		var id string
		r := &saleRow{}
		require.NoError(t, rows.Scan(&id, &r.receipt, &r.lines, &r.tenders, &r.print))
		require.Nil(t, sales[id], "sale %s recorded twice", id)
		sales[id] = r
	}
	require.NoError(t, rows.Err())
	rows.Close()

	for id, receipt := range reported {
		r := sales[id]
		require.NotNil(t, r, "reported sale %s is there", receipt)
		require.Equal(t, receipt, r.receipt)
		require.Equal(t, reportedLines[id], r.lines, "sale %s has all its lines", receipt)
		require.Equal(t, 1, events[id], "sale %s has its outbox event once", receipt)
	}
	for id, r := range sales {
		require.Positive(t, r.lines, "no completed sale without lines (%s)", r.receipt)
		require.Positive(t, r.tenders, "no completed sale without tenders (%s)", r.receipt)
		require.Equal(t, 1, events[id], "no completed sale without its event (%s)", r.receipt)
		require.Equal(t, 1, r.print, "no completed sale without its receipt's print job (%s)", r.receipt)
	}
	// Stock moved in the same transactions: what is on hand is the seed
	// minus exactly what the recorded sales sold.
	var drift int
	require.NoError(t, db.Read.QueryRow(`SELECT COUNT(*) FROM inventory i WHERE i.on_hand <> 1000000 -
		COALESCE((SELECT SUM(l.qty) FROM sale_lines l JOIN sales s ON s.id = l.sale_id WHERE l.sku = i.sku AND s.state = 'completed'), 0)`).Scan(&drift))
	require.Zero(t, drift, "stock matches the recorded sales")
	for id := range events {
		require.NotNil(t, sales[id], "no outbox event without its sale (%s)", id)
	}
	var lo, hi, cnt int64
	require.NoError(t, db.Read.QueryRow("SELECT COALESCE(MIN(seq), 0), COALESCE(MAX(seq), 0), COUNT(*) FROM outbox").Scan(&lo, &hi, &cnt))
	if cnt > 0 {
		require.Equal(t, hi-lo+1, cnt, "outbox seq has no gaps")
	}
	var receipts, distinct int
	require.NoError(t, db.Read.QueryRow("SELECT COUNT(receipt), COUNT(DISTINCT receipt) FROM sales").Scan(&receipts, &distinct))
	require.Equal(t, receipts, distinct, "receipt numbers are unique")
}
