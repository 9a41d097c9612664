package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"time"
)

// Figure is one measured figure. Raw is the raw limit measured in the same
// run, nil where the figure has none (a latency, a memory size); Ratio is
// Ours/Raw (or Raw/Ours when LowerIsBetter), nil without Raw.
type Figure struct {
	Scenario      string   `json:"scenario"`
	Metric        string   `json:"metric"`
	Unit          string   `json:"unit"`
	Ours          float64  `json:"ours"`
	Raw           *float64 `json:"raw"`
	Ratio         *float64 `json:"ratio"`
	RawName       string   `json:"raw_name,omitempty"`
	Goal          string   `json:"goal,omitempty"`
	LowerIsBetter bool     `json:"-"`
}

// WithRaw sets the raw limit and computes the ratio.
func (f Figure) WithRaw(name string, raw float64) Figure {
	f.RawName = name
	f.Raw = &raw
	var r float64
	switch {
	case raw == 0 || f.Ours == 0:
		r = 0
	case f.LowerIsBetter:
		r = raw / f.Ours
	default:
		r = f.Ours / raw
	}
	r = math.Round(r*1000) / 1000
	f.Ratio = &r
	return f
}

// Rate returns events per second for n events in d.
func Rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// Percentile returns the p-th percentile (0..100) of ds, nearest rank.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	k := int(math.Ceil(p/100*float64(len(s)))) - 1
	k = max(0, min(k, len(s)-1))
	return s[k]
}

// Ms is d in milliseconds with microsecond precision.
func Ms(d time.Duration) float64 { return math.Round(float64(d.Microseconds())) / 1000 }

// WriteTable prints figures as one Markdown table.
func WriteTable(w io.Writer, figs []Figure) error {
	var b strings.Builder
	b.WriteString("| scenario | metric | ours | raw limit (same run) | ratio | goal |\n")
	b.WriteString("| --- | --- | ---: | --- | ---: | --- |\n")
	for _, f := range figs {
		raw, ratio := "—", "—"
		if f.Raw != nil {
			raw = fmt.Sprintf("%s %s (%s)", num(*f.Raw), f.Unit, f.RawName)
			ratio = fmt.Sprintf("%.2f", *f.Ratio)
		}
		fmt.Fprintf(&b, "| %s | %s | %s %s | %s | %s | %s |\n", f.Scenario, f.Metric, num(f.Ours), f.Unit, raw, ratio, f.Goal)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON prints one JSON object per line per figure.
func WriteJSON(w io.Writer, figs []Figure) error {
	enc := json.NewEncoder(w)
	for _, f := range figs {
		if err := enc.Encode(f); err != nil {
			return err
		}
	}
	return nil
}

func num(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}
