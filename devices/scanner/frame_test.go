package scanner

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseFrame(t *testing.T) {
	cases := []struct {
		name, in, code, aim, sym string
		withAIM                  bool
		err                      error
	}{
		{name: "plain", in: "4006381333931", code: "4006381333931"},
		{name: "ean13", in: "]E04006381333931", withAIM: true, code: "4006381333931", aim: "]E0", sym: SymEAN13},
		{name: "gs1-128 with GS", in: "]C1010950110153000310ABC\x1d17260101", withAIM: true, code: "010950110153000310ABC\x1d17260101", aim: "]C1", sym: SymGS1128},
		{name: "unknown modifier of a known family", in: "]E9123", withAIM: true, code: "123", aim: "]E9", sym: SymEANUPC},
		{name: "unknown family", in: "]Z0123", withAIM: true, code: "123", aim: "]Z0", sym: SymUnknown},
		{name: "utf8 qr", in: "]Q1ÄÖ¥", withAIM: true, code: "ÄÖ¥", aim: "]Q1", sym: SymQR},
		{name: "missing aim", in: "4006381333931", withAIM: true, err: ErrGarbage},
		{name: "aim only", in: "]E0", withAIM: true, err: ErrGarbage},
		{name: "control byte", in: "12\x0034", err: ErrGarbage},
		{name: "escape", in: "\x1b[A", err: ErrGarbage},
		{name: "invalid utf8", in: "12\xff\xfe", err: ErrGarbage},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, aim, sym, err := ParseFrame([]byte(c.in), c.withAIM)
			if c.err != nil {
				require.ErrorIs(t, err, c.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.code, code)
			assert.Equal(t, c.aim, aim)
			assert.Equal(t, c.sym, sym)
		})
	}
}

func frames(rs []frameResult) (out []string, errs []error) {
	for _, r := range rs {
		if r.err != nil {
			errs = append(errs, r.err)
		} else {
			out = append(out, string(r.frame))
		}
	}
	return
}

func TestFramer(t *testing.T) {
	t.Run("split across reads", func(t *testing.T) {
		f := framer{suffix: []byte("\r\n"), max: 512}
		var got []string
		for _, chunk := range []string{"12", "3\r", "\n45", "6\r\n\r\n"} {
			fr, errs := frames(f.feed([]byte(chunk)))
			require.Empty(t, errs)
			got = append(got, fr...)
		}
		assert.Equal(t, []string{"123", "456"}, got)
		assert.False(t, f.pending())
	})
	t.Run("stray LF after CR suffix", func(t *testing.T) {
		f := framer{suffix: []byte("\r"), max: 512}
		got, errs := frames(f.feed([]byte("123\r\n456\r\n")))
		require.Empty(t, errs)
		assert.Equal(t, []string{"123", "456"}, got)
	})
	t.Run("tab", func(t *testing.T) {
		f := framer{suffix: []byte("\t"), max: 512}
		got, _ := frames(f.feed([]byte("a\t\tb\t")))
		assert.Equal(t, []string{"a", "b"}, got)
	})
	t.Run("too long then recovers", func(t *testing.T) {
		f := framer{suffix: []byte("\r\n"), max: 4}
		got, errs := frames(f.feed([]byte("1234\r\n12345678901\r\n99\r\n")))
		assert.Equal(t, []string{"1234", "99"}, got)
		require.Len(t, errs, 1)
		assert.True(t, errors.Is(errs[0], ErrTooLong))
	})
	t.Run("partial is pending and droppable", func(t *testing.T) {
		f := framer{suffix: []byte("\r"), max: 512}
		got, _ := frames(f.feed([]byte("12")))
		assert.Empty(t, got)
		assert.True(t, f.pending())
		assert.Equal(t, 2, f.drop())
		got, _ = frames(f.feed([]byte("34\r")))
		assert.Equal(t, []string{"34"}, got)
	})
}

func TestConfigValidate(t *testing.T) {
	require.ErrorIs(t, Config{Name: "s", Port: portCfg("/dev/x"), Suffix: "eot"}.Validate(), ErrBadConfig)
	require.Error(t, Config{Name: "s"}.Validate())
	require.NoError(t, Config{Name: "s", Port: portCfg("/dev/x"), Suffix: SuffixCRLF}.Validate())
}
