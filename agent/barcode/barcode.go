// Package barcode turns what a scanner sends into a product code: GTIN-8,
// -12, -13 and -14 with their check digits, AIM symbology prefixes, GS1
// element strings and Digital Link URLs, and the restricted-circulation
// codes that carry a weight or a price (EAN-13 prefixes 20–29 and the
// 18-digit codes of Chinese supermarket scales), with the layout set per
// store. Anything else is a clear error, never a wrong code.
package barcode

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// Errors returned (wrapped) by Parse.
var (
	// ErrMalformed means the input is not a code this package accepts.
	ErrMalformed = errors.New("malformed barcode")
	// ErrCheckDigit means the digits are a GTIN shape whose check digit is wrong.
	ErrCheckDigit = errors.New("barcode check digit does not match")
	// ErrNotProduct means the scan is a coupon token, not a product: the
	// caller routes it to coupon entry.
	ErrNotProduct = errors.New("scan is a coupon, not a product")
)

// MaxLen bounds an accepted scan.
const MaxLen = 128

// Kind says what a Code carries.
type Kind int

// Kinds of Code.
const (
	KindGTIN   Kind = iota + 1 // a trade item number; look up by GTIN
	KindWeight                 // variable measure: PLU + weight (Qty in thousandths of a kg)
	KindPrice                  // price-embedded: PLU + price (and maybe weight)
	KindOther                  // an alphanumeric code (store label); look up as is
)

func (k Kind) String() string {
	switch k {
	case KindGTIN:
		return "gtin"
	case KindWeight:
		return "weight"
	case KindPrice:
		return "price"
	case KindOther:
		return "other"
	}
	return "unknown"
}

// Code is a parsed scan.
type Code struct {
	Raw       string // as received, suffix trimmed
	Symbology string // from the AIM prefix, "" if none
	Kind      Kind
	GTIN      string // 14 digits, for KindGTIN
	PLU       string // for KindWeight and KindPrice
	Qty       int64  // thousandths (grams of a kg item), 0 if the code has none
	Price     int64  // minor units, 0 if the code has none
	Value     string // the code without AIM prefix, for KindOther
}

// aimNames maps AIM symbology identifiers to names (ISO/IEC 15424).
var aimNames = map[string]string{
	"]E0": "EAN-13", "]E1": "EAN-13+2", "]E2": "EAN-13+5", "]E3": "EAN-13+add-on", "]E4": "EAN-8",
	"]C0": "Code 128", "]C1": "GS1-128", "]A0": "Code 39", "]e0": "GS1 DataBar",
	"]Q1": "QR", "]Q3": "GS1 QR", "]d1": "Data Matrix", "]d2": "GS1 DataMatrix", "]I0": "ITF",
}

var aimPrefix = regexp.MustCompile(`^\][A-Za-z][0-9A-Za-z]`)

// SymbologyName names an AIM identifier such as "]E0".
func SymbologyName(aim string) string {
	if n, ok := aimNames[aim]; ok {
		return n
	}
	if aimPrefix.MatchString(aim) {
		return "AIM " + aim
	}
	return ""
}

// StripAIM splits an AIM prefix off raw.
func StripAIM(raw string) (aim, rest string) {
	if aimPrefix.MatchString(raw) {
		return raw[:3], raw[3:]
	}
	return "", raw
}

// Parser parses scans with a store's variable-measure layouts.
type Parser struct {
	layouts []Layout
}

// NewParser validates layouts; nil or empty means DefaultLayouts().
func NewParser(layouts []Layout) (*Parser, error) {
	if len(layouts) == 0 {
		layouts = DefaultLayouts()
	}
	for i, l := range layouts {
		if err := l.Validate(); err != nil {
			return nil, fmt.Errorf("barcode layout %d: %w", i, err)
		}
	}
	return &Parser{layouts: layouts}, nil
}

// Parse turns a scan into a Code. Errors wrap ErrMalformed, ErrCheckDigit
// or ErrNotProduct and say what is wrong.
func (p *Parser) Parse(raw string) (Code, error) {
	raw = strings.TrimRight(raw, "\r\n\t")
	raw = strings.TrimLeft(raw, "\r\n\t")
	if raw == "" {
		return Code{}, fmt.Errorf("%w: empty scan", ErrMalformed)
	}
	if len(raw) > MaxLen {
		return Code{}, fmt.Errorf("%w: %d characters, at most %d", ErrMalformed, len(raw), MaxLen)
	}
	for _, r := range raw {
		if r < 0x20 || r == 0x7f {
			if r == 0x1d { // GS, the FNC1 separator in GS1 element strings
				continue
			}
			return Code{}, fmt.Errorf("%w: control character %U", ErrMalformed, r)
		}
	}
	aim, body := StripAIM(raw)
	c := Code{Raw: raw, Symbology: SymbologyName(aim)}
	if strings.HasPrefix(body, "EP1.") {
		return Code{}, ErrNotProduct
	}
	if body == "" {
		return Code{}, fmt.Errorf("%w: nothing after the symbology prefix %s", ErrMalformed, aim)
	}

	// GS1 Digital Link: https://id.example.com/01/09506000134352/10/ABC
	if strings.HasPrefix(body, "http://") || strings.HasPrefix(body, "https://") {
		g, err := digitalLinkGTIN(body)
		if err != nil {
			return Code{}, err
		}
		return p.gtin(c, g)
	}
	// GS1 element string: (01)09506000134352… or 0109506000134352… from
	// GS1-128, DataBar, GS1 QR / DataMatrix.
	if g, ok := elementStringGTIN(body, aim); ok {
		return p.gtin(c, g)
	}
	if allDigits(body) {
		switch len(body) {
		case 8, 12, 13, 14, 18:
		default:
			return Code{}, fmt.Errorf("%w: %d digits is no GTIN or scale code length", ErrMalformed, len(body))
		}
		if c2, ok, err := p.variable(c, body); ok || err != nil {
			return c2, err
		}
		if len(body) == 18 {
			return Code{}, fmt.Errorf("%w: 18 digits match no scale-code layout of this store", ErrMalformed)
		}
		return p.gtin(c, body)
	}
	// An alphanumeric label (Code 128 / Code 39): printable ASCII only.
	for _, r := range body {
		if r > 0x7e {
			return Code{}, fmt.Errorf("%w: non-ASCII character %q", ErrMalformed, r)
		}
	}
	c.Kind, c.Value = KindOther, body
	return c, nil
}

func (p *Parser) gtin(c Code, digits string) (Code, error) {
	g, err := NormalizeGTIN(digits)
	if err != nil {
		return Code{}, err
	}
	// A restricted-circulation GTIN-13 (prefix 20–29) inside GTIN-14 that
	// matches a layout is a weight or price code after all.
	if c2, ok, err := p.variable(c, g[1:]); g[0] == '0' && (ok || err != nil) {
		return c2, err
	}
	c.Kind, c.GTIN = KindGTIN, g
	return c, nil
}

// variable tries the store's layouts on digits.
func (p *Parser) variable(c Code, digits string) (Code, bool, error) {
	for _, l := range p.layouts {
		if !l.matches(digits) {
			continue
		}
		c2, err := l.decode(c, digits)
		return c2, true, err
	}
	return c, false, nil
}

func digitalLinkGTIN(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%w: bad Digital Link URL", ErrMalformed)
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	for i := 0; i+1 < len(parts); i++ {
		if parts[i] == "01" || parts[i] == "gtin" {
			if allDigits(parts[i+1]) && len(parts[i+1]) <= 14 {
				return parts[i+1], nil
			}
			return "", fmt.Errorf("%w: Digital Link GTIN %q is not 8–14 digits", ErrMalformed, parts[i+1])
		}
	}
	return "", fmt.Errorf("%w: URL carries no GS1 Digital Link GTIN (/01/…)", ErrMalformed)
}

func elementStringGTIN(s, aim string) (string, bool) {
	if strings.HasPrefix(s, "(01)") && len(s) >= 18 && allDigits(s[4:18]) {
		return s[4:18], true
	}
	gs1 := aim == "]C1" || aim == "]e0" || aim == "]Q3" || aim == "]d2"
	if gs1 && strings.HasPrefix(s, "01") && len(s) >= 16 && allDigits(s[2:16]) {
		return s[2:16], true
	}
	if len(s) == 16 && strings.HasPrefix(s, "01") && allDigits(s) {
		return s[2:], true
	}
	return "", false
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// CheckDigit computes the GS1 check digit of digits (the code without its
// last digit): weights 3, 1, 3, 1… from the rightmost digit,
// check = (10 − sum mod 10) mod 10.
func CheckDigit(digits string) (byte, error) {
	if !allDigits(digits) {
		return 0, fmt.Errorf("%w: %q is not all digits", ErrMalformed, digits)
	}
	sum := 0
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if (len(digits)-1-i)%2 == 0 {
			d *= 3
		}
		sum += d
	}
	return byte('0' + (10-sum%10)%10), nil
}

// ValidGTIN reports whether s is a GTIN-8/12/13/14 with a correct check digit.
func ValidGTIN(s string) bool {
	_, err := NormalizeGTIN(s)
	return err == nil
}

// NormalizeGTIN checks s and returns it as 14 digits (left-padded with
// zeros), so a UPC-A and its EAN-13 form are one key.
func NormalizeGTIN(s string) (string, error) {
	if !allDigits(s) {
		return "", fmt.Errorf("%w: GTIN %q is not all digits", ErrMalformed, s)
	}
	switch len(s) {
	case 8, 12, 13, 14:
	default:
		return "", fmt.Errorf("%w: GTIN has %d digits, want 8, 12, 13 or 14", ErrMalformed, len(s))
	}
	want, _ := CheckDigit(s[:len(s)-1])
	if s[len(s)-1] != want {
		return "", fmt.Errorf("%w: %s ends in %c, check digit is %c", ErrCheckDigit, s, s[len(s)-1], want)
	}
	return strings.Repeat("0", 14-len(s)) + s, nil
}
