package barcode

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func withCheck(tb testing.TB, digits string) string {
	tb.Helper()
	c, err := CheckDigit(digits)
	require.NoError(tb, err)
	return digits + string(c)
}

func TestCheckDigitSpecExample(t *testing.T) {
	c, err := CheckDigit("400638133393")
	require.NoError(t, err)
	require.Equal(t, byte('1'), c)
	require.True(t, ValidGTIN("4006381333931"))
	require.False(t, ValidGTIN("4006381333932"))
}

func TestParse(t *testing.T) {
	p, err := NewParser(nil)
	require.NoError(t, err)
	ean13 := "4006381333931"
	upc := "036000291452"
	ean8 := "96385074"
	weight := withCheck(t, "210012301532") // PLU 123, 1.532 kg
	scale18 := withCheck(t, "22004560123400750")

	cases := []struct {
		name, in string
		kind     Kind
		gtin     string
		plu      string
		qty      int64
		price    int64
		sym      string
		err      error
	}{
		{name: "EAN-13", in: ean13, kind: KindGTIN, gtin: "0" + ean13},
		{name: "EAN-13 with AIM and CRLF", in: "]E0" + ean13 + "\r\n", kind: KindGTIN, gtin: "0" + ean13, sym: "EAN-13"},
		{name: "UPC-A matches its EAN-13 form", in: upc, kind: KindGTIN, gtin: "00" + upc},
		{name: "UPC-A as EAN-13", in: "0" + upc, kind: KindGTIN, gtin: "00" + upc},
		{name: "EAN-8", in: "]E4" + ean8, kind: KindGTIN, gtin: "000000" + ean8, sym: "EAN-8"},
		{name: "GTIN-14", in: "1" + ean13[:12] + string(mustCheck(t, "1"+ean13[:12])), kind: KindGTIN},
		{name: "GS1 element string", in: "(01)0" + ean13, kind: KindGTIN, gtin: "0" + ean13},
		{name: "GS1-128 AI 01", in: "]C1010" + ean13 + "10ABC", kind: KindGTIN, gtin: "0" + ean13, sym: "GS1-128"},
		{name: "Digital Link", in: "https://id.example.com/01/0" + ean13 + "/10/LOT1", kind: KindGTIN, gtin: "0" + ean13},
		{name: "weighed EAN-13", in: weight, kind: KindWeight, plu: "123", qty: 1532},
		{name: "scale 18 digits", in: scale18, kind: KindPrice, plu: "456", price: 1234, qty: 750},
		{name: "store label", in: "]C0SHELF-A1", kind: KindOther, sym: "Code 128"},
		{name: "coupon token", in: "EP1.abc.def", err: ErrNotProduct},
		{name: "bad check digit", in: "4006381333932", err: ErrCheckDigit},
		{name: "bad check digit on weight code", in: wrongCheck(t, "210012301532"), err: ErrCheckDigit},
		{name: "odd length", in: "12345", err: ErrMalformed},
		{name: "empty", in: "\r\n", err: ErrMalformed},
		{name: "control chars", in: "4006\x07381333931", err: ErrMalformed},
		{name: "too long", in: string(make([]byte, 200)), err: ErrMalformed},
		{name: "only AIM", in: "]E0", err: ErrMalformed},
		{name: "URL without GTIN", in: "https://example.com/hello", err: ErrMalformed},
		{name: "18 digits no layout", in: "912345678901234567", err: ErrMalformed},
		{name: "zero weight", in: withCheck(t, "210012300000"), err: ErrMalformed},
		{name: "non-ASCII label", in: "货架A1", err: ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := p.Parse(tc.in)
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				require.NotEmpty(t, err.Error())
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.kind, c.Kind)
			if tc.gtin != "" {
				require.Equal(t, tc.gtin, c.GTIN)
			}
			if c.Kind == KindGTIN {
				require.Len(t, c.GTIN, 14)
				require.True(t, ValidGTIN(c.GTIN))
			}
			require.Equal(t, tc.plu, c.PLU)
			require.Equal(t, tc.qty, c.Qty)
			require.Equal(t, tc.price, c.Price)
			if tc.sym != "" {
				require.Equal(t, tc.sym, c.Symbology)
			}
		})
	}
}

func wrongCheck(tb testing.TB, d string) string {
	c := mustCheck(tb, d)
	return d + string('0'+(c-'0'+1)%10)
}

func mustCheck(tb testing.TB, d string) byte {
	c, err := CheckDigit(d)
	require.NoError(tb, err)
	return c
}

func TestCustomLayoutDahuaPrice13(t *testing.T) {
	p, err := NewParser([]Layout{{Name: "dahua-price", Prefixes: []string{"25"}, Length: 13, PLUStart: 2, PLULen: 5, PriceStart: 7, PriceLen: 5, CheckDigit: true}})
	require.NoError(t, err)
	c, err := p.Parse(withCheck(t, "250000701999"))
	require.NoError(t, err)
	require.Equal(t, KindPrice, c.Kind)
	require.Equal(t, "7", c.PLU)
	require.EqualValues(t, 1999, c.Price)
	// With this store's layout, prefix 21 is an ordinary GTIN.
	c, err = p.Parse(withCheck(t, "210012301532"))
	require.NoError(t, err)
	require.Equal(t, KindGTIN, c.Kind)
}

func TestLayoutValidation(t *testing.T) {
	bad := []Layout{
		{Prefixes: []string{"2"}, Length: 12, PLUStart: 2, PLULen: 5, PriceStart: 7, PriceLen: 5},
		{Prefixes: nil, Length: 13, PLUStart: 2, PLULen: 5, PriceStart: 7, PriceLen: 5},
		{Prefixes: []string{"2"}, Length: 13, PLUStart: 2, PLULen: 6, PriceStart: 7, PriceLen: 5},                   // overlap
		{Prefixes: []string{"2"}, Length: 13, PLUStart: 2, PLULen: 5, PriceStart: 8, PriceLen: 5, CheckDigit: true}, // past the check digit
		{Prefixes: []string{"2"}, Length: 13, PLUStart: 2, PLULen: 5},                                               // no value
		{Prefixes: []string{"x"}, Length: 13, PLUStart: 2, PLULen: 5, PriceStart: 7, PriceLen: 5},
	}
	for i, l := range bad {
		_, err := NewParser([]Layout{l})
		require.Error(t, err, "layout %d", i)
	}
}

func TestPriceCheckDigit(t *testing.T) {
	for in, want := range map[string]byte{"2875": '9', "14685": '6', "0000": '0', "00000": '0'} {
		got, err := PriceCheckDigit(in)
		require.NoError(t, err)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "123", "123456", "12a4"} {
		_, err := PriceCheckDigit(in)
		require.ErrorIs(t, err, ErrMalformed, in)
	}
	// Every weight is a permutation of 0-9, so any single wrong digit in
	// the value changes the verifier.
	for _, n := range []int{4, 5} {
		for v := 0; v < 100000 && len(fmt.Sprintf("%0*d", n, v)) == n; v += 7 {
			s := fmt.Sprintf("%0*d", n, v)
			c, _ := PriceCheckDigit(s)
			for i := 0; i < n; i++ {
				b := []byte(s)
				b[i] = '0' + (b[i]-'0'+3)%10
				c2, _ := PriceCheckDigit(string(b))
				require.NotEqual(t, c, c2, "%s vs %s", s, b)
			}
		}
	}
}

func TestLayoutPriceVerifier(t *testing.T) {
	l := Layout{Name: "price-verified", Prefixes: []string{"2"}, Length: 13, PLUStart: 1, PLULen: 5,
		PriceStart: 7, PriceLen: 5, CheckDigit: true, PriceCheckDigit: true, PriceCheckAt: 6}
	p, err := NewParser([]Layout{l})
	require.NoError(t, err)
	c, err := p.Parse(withCheck(t, "201234614685"))
	require.NoError(t, err)
	require.Equal(t, KindPrice, c.Kind)
	require.Equal(t, "1234", c.PLU)
	require.EqualValues(t, 14685, c.Price)

	_, err = p.Parse(withCheck(t, "201234714685")) // right GS1 check digit, wrong price verifier
	require.ErrorIs(t, err, ErrCheckDigit)
	require.Contains(t, err.Error(), "price verifier")

	bad := l
	bad.PriceLen, bad.PriceStart = 3, 8
	_, err = NewParser([]Layout{bad})
	require.ErrorContains(t, err, "4- or 5-digit")
	bad = l
	bad.PriceCheckAt = 5 // inside the PLU
	_, err = NewParser([]Layout{bad})
	require.ErrorContains(t, err, "overlaps")
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"4006381333931", "]E04006381333931\r\n", "036000291452", "96385074", "2100123015328",
		"220045601234007501", "(01)04006381333931", "]C10104006381333931", "https://x/01/04006381333931", "EP1.a.b", "", "]", "]E"} {
		f.Add(s)
	}
	p, err := NewParser(nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := p.Parse(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrCheckDigit) && !errors.Is(err, ErrNotProduct) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		switch c.Kind {
		case KindGTIN:
			if !ValidGTIN(c.GTIN) || len(c.GTIN) != 14 {
				t.Fatalf("parse %q gave invalid GTIN %q", s, c.GTIN)
			}
		case KindWeight:
			if c.Qty <= 0 || c.PLU == "" {
				t.Fatalf("parse %q gave weight code %+v", s, c)
			}
		case KindPrice:
			if c.Price <= 0 || c.PLU == "" {
				t.Fatalf("parse %q gave price code %+v", s, c)
			}
		case KindOther:
			if c.Value == "" {
				t.Fatalf("parse %q gave an empty label", s)
			}
		default:
			t.Fatalf("parse %q gave kind %v", s, c.Kind)
		}
	})
}
