package shelf

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDecodeReadings(t *testing.T) {
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		in   string
		want []Reading
	}{
		{"single", `{"slot":0,"weight_g":1234,"at":"2026-03-01T09:00:00Z"}`, []Reading{{Slot: 0, Grams: 1234, At: at}}},
		{"single without at", `{"slot":3,"weight_g":-12}`, []Reading{{Slot: 3, Grams: -12}}},
		{"decimal grams round half away", `{"slot":1,"weight_g":87.5}`, []Reading{{Slot: 1, Grams: 88}}},
		{"exponent", `{"slot":1,"weight_g":1.2e3}`, []Reading{{Slot: 1, Grams: 1200}}},
		{"offset time to UTC", `{"slot":0,"weight_g":1,"at":"2026-03-01T17:00:00+08:00"}`, []Reading{{Slot: 0, Grams: 1, At: at}}},
		{"multi", `{"at":"2026-03-01T09:00:00Z","readings":[{"slot":0,"weight_g":1234},{"slot":1,"weight_g":87}]}`,
			[]Reading{{Slot: 0, Grams: 1234, At: at}, {Slot: 1, Grams: 87, At: at}}},
		{"multi, own time wins", `{"readings":[{"slot":0,"weight_g":5,"at":"2026-03-01T09:00:00Z"}]}`, []Reading{{Slot: 0, Grams: 5, At: at}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := DecodeReadings([]byte(c.in), 0)
			require.NoError(t, err)
			assert.Equal(t, c.want, got)
		})
	}
}

func TestDecodeReadingsRejects(t *testing.T) {
	many := `{"readings":[` + strings.Repeat(`{"slot":0,"weight_g":1},`, 64) + `{"slot":0,"weight_g":1}]}`
	cases := map[string]string{
		"empty":               ``,
		"not json":            `CHANGE:1234`,
		"null":                `null`,
		"array":               `[{"slot":0,"weight_g":1}]`,
		"string":              `"1234"`,
		"unknown field":       `{"slot":0,"weight_g":1,"mac":"aa:bb"}`,
		"two values":          `{"slot":0,"weight_g":1}{"slot":0,"weight_g":1}`,
		"trailing garbage":    `{"slot":0,"weight_g":1} x`,
		"no weight":           `{"slot":0}`,
		"no slot":             `{"weight_g":5}`,
		"both forms":          `{"slot":0,"weight_g":1,"readings":[{"slot":1,"weight_g":2}]}`,
		"neither":             `{"at":"2026-03-01T09:00:00Z"}`,
		"empty list":          `{"readings":[]}`,
		"too many":            many,
		"duplicate slot":      `{"readings":[{"slot":1,"weight_g":2},{"slot":1,"weight_g":3}]}`,
		"negative slot":       `{"slot":-1,"weight_g":1}`,
		"slot too big":        `{"slot":1024,"weight_g":1}`,
		"fractional slot":     `{"slot":1.5,"weight_g":1}`,
		"weight as string":    `{"slot":0,"weight_g":"1234"}`,
		"weight out of range": `{"slot":0,"weight_g":1e300}`,
		"weight null":         `{"slot":0,"weight_g":null}`,
		"bad time":            `{"slot":0,"weight_g":1,"at":"yesterday"}`,
		"bad time in list":    `{"readings":[{"slot":0,"weight_g":1,"at":"09:00"}]}`,
		"truncated":           `{"slot":0,"weight_g":12`,
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeReadings([]byte(in), 0)
			require.ErrorIs(t, err, ErrPayload)
		})
	}
	_, err := DecodeReadings([]byte(`{"slot":0,"weight_g":1}`+strings.Repeat(" ", 100)), 64)
	require.ErrorIs(t, err, ErrPayload, "over the size limit")
	assert.Contains(t, err.Error(), "limit 64")
}
