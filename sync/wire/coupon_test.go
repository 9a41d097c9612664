package wire

import (
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func testKey(tb testing.TB) (ed25519.PublicKey, ed25519.PrivateKey) {
	tb.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(tb, err)
	return pub, priv
}

func sampleCoupon(tb testing.TB) Coupon {
	tb.Helper()
	return Coupon{ID: newID(tb), KeyID: "k1", Kind: CouponAmountOff, Value: 500, MinSpend: 2000, Currency: "CNY",
		NotBefore: t0.Add(-time.Hour), Expires: t0.Add(24 * time.Hour), SKUs: []string{"A"}, Stores: []string{"S1"}}
}

func TestCouponSignVerify(t *testing.T) {
	pub, priv := testKey(t)
	keys := map[string]ed25519.PublicKey{"k1": pub}
	c := sampleCoupon(t)
	tok, err := SignCoupon(priv, c)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(tok, CouponPrefix))
	require.LessOrEqual(t, len(tok), MaxTokenBytes)

	got, err := VerifyCoupon(tok, keys, t0)
	require.NoError(t, err)
	require.Equal(t, c.ID, got.ID)
	require.Equal(t, c.Value, got.Value)
	require.Equal(t, c.SKUs, got.SKUs)

	parsed, err := ParseCoupon(" " + tok + "\n")
	require.NoError(t, err)
	require.Equal(t, c.ID, parsed.ID)

	otherPub, otherPriv := testKey(t)
	payload, sig, _ := strings.Cut(strings.TrimPrefix(tok, CouponPrefix), ".")
	cases := []struct {
		name  string
		token string
		keys  map[string]ed25519.PublicKey
		now   time.Time
		want  error
	}{
		{"bad signature", CouponPrefix + payload + "." + sig[:len(sig)-4] + "AAAA", keys, t0, ErrSignature},
		{"signed by another key", mustSign(t, otherPriv, c), keys, t0, ErrSignature},
		{"unknown kid", tok, map[string]ed25519.PublicKey{"k2": otherPub}, t0, ErrUnknownKey},
		{"expired", tok, keys, c.Expires, ErrExpired},
		{"not yet valid", tok, keys, c.NotBefore.Add(-time.Second), ErrNotYet},
		{"tampered payload", CouponPrefix + tamper(t, payload) + "." + sig, keys, t0, ErrSignature},
		{"no prefix", strings.TrimPrefix(tok, CouponPrefix), keys, t0, ErrBadToken},
		{"no signature", CouponPrefix + payload, keys, t0, ErrBadToken},
		{"short signature", CouponPrefix + payload + ".AAAA", keys, t0, ErrBadToken},
		{"payload not base64", CouponPrefix + "!!!." + sig, keys, t0, ErrBadToken},
		{"too long", tok + strings.Repeat("A", MaxTokenBytes), keys, t0, ErrBadToken},
		{"payload not JSON", CouponPrefix + b64.EncodeToString([]byte("nope")) + "." + sig, keys, t0, ErrBadToken},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := VerifyCoupon(tc.token, tc.keys, tc.now)
			require.ErrorIs(t, err, tc.want)
		})
	}
}

func mustSign(tb testing.TB, k ed25519.PrivateKey, c Coupon) string {
	tb.Helper()
	tok, err := SignCoupon(k, c)
	require.NoError(tb, err)
	return tok
}

// tamper raises the coupon's value inside a still well-formed payload.
func tamper(tb testing.TB, payload string) string {
	tb.Helper()
	raw, err := b64.DecodeString(payload)
	require.NoError(tb, err)
	s := strings.Replace(string(raw), `"value":500`, `"value":50000`, 1)
	require.NotEqual(tb, string(raw), s)
	return b64.EncodeToString([]byte(s))
}

func TestSignCouponRejectsInvalid(t *testing.T) {
	_, priv := testKey(t)
	for name, f := range map[string]func(c *Coupon){
		"bad id":         func(c *Coupon) { c.ID = "x" },
		"no kid":         func(c *Coupon) { c.KeyID = "" },
		"bad kind":       func(c *Coupon) { c.Kind = "bogo" },
		"zero amount":    func(c *Coupon) { c.Value = 0 },
		"percent > 100%": func(c *Coupon) { c.Kind, c.Value = CouponPercentOff, 10001 },
		"bad currency":   func(c *Coupon) { c.Currency = "RMBX" },
		"empty window":   func(c *Coupon) { c.Expires = c.NotBefore },
		"negative min":   func(c *Coupon) { c.MinSpend = -1 },
	} {
		t.Run(name, func(t *testing.T) {
			c := sampleCoupon(t)
			f(&c)
			_, err := SignCoupon(priv, c)
			require.ErrorIs(t, err, ErrInvalid)
		})
	}
	t.Run("too large for a QR code", func(t *testing.T) {
		c := sampleCoupon(t)
		for i := 0; i < 100; i++ {
			c.SKUs = append(c.SKUs, "SKU-0000000000")
		}
		_, err := SignCoupon(priv, c)
		require.ErrorIs(t, err, ErrTooLarge)
	})
}
