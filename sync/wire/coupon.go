package wire

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// CouponPrefix starts every coupon token: "EP1.<payload>.<signature>", both
// parts base64url without padding. The signature is Ed25519 over the bytes
// "EP1.<payload>" so the version is signed too.
const CouponPrefix = "EP1."

// MaxTokenBytes bounds a coupon token (it must fit a QR code).
const MaxTokenBytes = 1024

// Coupon kinds.
const (
	CouponAmountOff  = "amount"  // Value is minor units off
	CouponPercentOff = "percent" // Value is basis points off (1000 = 10 %)
)

// Coupon is what a signed token says. Times are UTC.
type Coupon struct {
	ID        string    `json:"id"`  // UUID
	KeyID     string    `json:"kid"` // which HQ key signed it
	Kind      string    `json:"kind"`
	Value     int64     `json:"value"`
	MaxOff    int64     `json:"max_off,omitempty"` // cap for percent coupons, minor units
	MinSpend  int64     `json:"min_spend,omitempty"`
	SKUs      []string  `json:"skus,omitempty"` // eligible SKUs; empty = whole basket
	Currency  string    `json:"cur"`
	Member    string    `json:"member,omitempty"`
	NotBefore time.Time `json:"nbf"`
	Expires   time.Time `json:"exp"`
	Stores    []string  `json:"stores,omitempty"` // empty = every store
}

// Validate checks a coupon's own fields.
func (c *Coupon) Validate() error {
	if _, err := uuid.Parse(c.ID); err != nil {
		return invalid("coupon.id", "not a UUID")
	}
	if c.KeyID == "" || len(c.KeyID) > 64 {
		return invalid("coupon.kid", "missing or too long")
	}
	switch c.Kind {
	case CouponAmountOff:
		if c.Value <= 0 {
			return invalid("coupon.value", "amount off must be positive")
		}
	case CouponPercentOff:
		if c.Value <= 0 || c.Value > 10000 {
			return invalid("coupon.value", "percent off must be 1..10000 basis points")
		}
	default:
		return invalid("coupon.kind", "%q is not amount|percent", truncate(c.Kind, 20))
	}
	if c.MinSpend < 0 || c.MaxOff < 0 {
		return invalid("coupon", "negative min_spend or max_off")
	}
	if len(c.Currency) != 3 {
		return invalid("coupon.cur", "not an ISO 4217 code")
	}
	if c.NotBefore.IsZero() || c.Expires.IsZero() || !c.Expires.After(c.NotBefore) {
		return invalid("coupon.exp", "validity window empty")
	}
	return nil
}

var b64 = base64.RawURLEncoding

// SignCoupon returns the token for c signed with key. c.KeyID must name key.
func SignCoupon(key ed25519.PrivateKey, c Coupon) (string, error) {
	c.NotBefore, c.Expires = c.NotBefore.UTC(), c.Expires.UTC()
	if err := c.Validate(); err != nil {
		return "", fmt.Errorf("sign coupon: %w", err)
	}
	p, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("sign coupon: %w", err)
	}
	signed := CouponPrefix + b64.EncodeToString(p)
	sig := ed25519.Sign(key, []byte(signed))
	tok := signed + "." + b64.EncodeToString(sig)
	if len(tok) > MaxTokenBytes {
		return "", fmt.Errorf("sign coupon: %w: token %d bytes > %d", ErrTooLarge, len(tok), MaxTokenBytes)
	}
	return tok, nil
}

// ParseCoupon decodes a token without checking its signature or dates. Use
// VerifyCoupon to trust it.
func ParseCoupon(token string) (Coupon, error) {
	c, _, _, err := splitToken(token)
	return c, err
}

func splitToken(token string) (c Coupon, signed string, sig []byte, err error) {
	token = strings.TrimSpace(token)
	if len(token) > MaxTokenBytes {
		return c, "", nil, fmt.Errorf("%w: longer than %d bytes", ErrBadToken, MaxTokenBytes)
	}
	rest, ok := strings.CutPrefix(token, CouponPrefix)
	if !ok {
		return c, "", nil, fmt.Errorf("%w: does not start with %s", ErrBadToken, CouponPrefix)
	}
	payload, sigText, ok := strings.Cut(rest, ".")
	if !ok {
		return c, "", nil, fmt.Errorf("%w: no signature part", ErrBadToken)
	}
	p, err := b64.DecodeString(payload)
	if err != nil {
		return c, "", nil, fmt.Errorf("%w: payload is not base64url", ErrBadToken)
	}
	sig, err = b64.DecodeString(sigText)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return c, "", nil, fmt.Errorf("%w: signature is not %d bytes of base64url", ErrBadToken, ed25519.SignatureSize)
	}
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Coupon{}, "", nil, fmt.Errorf("%w: payload: %v", ErrBadToken, err)
	}
	if err := c.Validate(); err != nil {
		return Coupon{}, "", nil, fmt.Errorf("%w: %v", ErrBadToken, err)
	}
	return c, CouponPrefix + payload, sig, nil
}

// VerifyCoupon parses token, checks its signature against the key its kid
// names in keys, and checks the validity window at now. It does not check
// single use, minimum spend or eligible items: those need the basket.
//
// Errors wrap ErrBadToken, ErrUnknownKey, ErrSignature, ErrNotYet or
// ErrExpired.
func VerifyCoupon(token string, keys map[string]ed25519.PublicKey, now time.Time) (Coupon, error) {
	c, signed, sig, err := splitToken(token)
	if err != nil {
		return Coupon{}, err
	}
	pub, ok := keys[c.KeyID]
	if !ok || len(pub) != ed25519.PublicKeySize {
		return Coupon{}, fmt.Errorf("%w: %q", ErrUnknownKey, truncate(c.KeyID, 64))
	}
	if !ed25519.Verify(pub, []byte(signed), sig) {
		return Coupon{}, ErrSignature
	}
	if now.Before(c.NotBefore) {
		return Coupon{}, fmt.Errorf("%w: valid from %s", ErrNotYet, c.NotBefore.Format(time.RFC3339))
	}
	if !now.Before(c.Expires) {
		return Coupon{}, fmt.Errorf("%w: expired %s", ErrExpired, c.Expires.Format(time.RFC3339))
	}
	return c, nil
}
