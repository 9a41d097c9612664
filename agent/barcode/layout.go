package barcode

import (
	"fmt"
	"strconv"
	"strings"
)

// Layout describes a restricted-circulation code a store's scales print.
// Positions are 0-based into the digit string; lengths count digits. The
// GS1 General Specifications (§2.1.14, variable measure trade items) leave
// the layout to the market, so it is configured per store.
//
// Examples:
//   - EAN-13 weight, "PP IIIII WWWWW C": Prefixes 20–29, Length 13, PLU 2/5,
//     Weight 7/5 in grams.
//   - Dahua 13-digit price "FF WWWWW EEEEE C": PLU 2/5, Price 7/5 in fen.
//   - Dahua/Aclas 18-digit "FF WWWWW EEEEE NNNNN C": PLU 2/5, Price 7/5,
//     Weight 12/5.
type Layout struct {
	Name     string   `json:"name" mapstructure:"name"`
	Prefixes []string `json:"prefixes" mapstructure:"prefixes"` // leading digits that select this layout
	Length   int      `json:"length" mapstructure:"length"`     // 13 or 18
	PLUStart int      `json:"plu_start" mapstructure:"plu_start"`
	PLULen   int      `json:"plu_len" mapstructure:"plu_len"`
	// WeightStart/WeightLen locate a weight; WeightLen 0 means none.
	// WeightDecimals is the implied decimals in kg (3: the digits are grams).
	WeightStart    int `json:"weight_start" mapstructure:"weight_start"`
	WeightLen      int `json:"weight_len" mapstructure:"weight_len"`
	WeightDecimals int `json:"weight_decimals" mapstructure:"weight_decimals"`
	// PriceStart/PriceLen locate a price in minor units; PriceLen 0 means none.
	PriceStart int `json:"price_start" mapstructure:"price_start"`
	PriceLen   int `json:"price_len" mapstructure:"price_len"`
	// CheckDigit: the last digit is a GS1 mod-10 check digit over the rest.
	CheckDigit bool `json:"check_digit" mapstructure:"check_digit"`
	// PriceCheckDigit: the digit at PriceCheckAt is the GS1 price/weight
	// verifier over the 4- or 5-digit value field (the price if the layout
	// has one, else the weight), e.g. EAN-13 "PP IIII V EEEE C" with
	// PriceCheckAt 6 (GS1 General Specifications §2.1.14; PriceVerifier).
	PriceCheckDigit bool `json:"price_check_digit" mapstructure:"price_check_digit"`
	PriceCheckAt    int  `json:"price_check_at" mapstructure:"price_check_at"`
}

// DefaultLayouts are the layouts used when a store configures none: EAN-13
// with prefixes 20–29 carrying a weight in grams, and the 18-digit code of
// Chinese scales (prefix 2) with price then weight.
func DefaultLayouts() []Layout {
	return []Layout{
		{Name: "ean13-weight", Prefixes: []string{"20", "21", "22", "23", "24", "25", "26", "27", "28", "29"}, Length: 13,
			PLUStart: 2, PLULen: 5, WeightStart: 7, WeightLen: 5, WeightDecimals: 3, CheckDigit: true},
		{Name: "scale18-price-weight", Prefixes: []string{"2"}, Length: 18,
			PLUStart: 2, PLULen: 5, PriceStart: 7, PriceLen: 5, WeightStart: 12, WeightLen: 5, WeightDecimals: 3, CheckDigit: true},
	}
}

// Validate checks that the fields fit inside Length and do not overlap.
func (l Layout) Validate() error {
	if l.Length != 13 && l.Length != 18 {
		return fmt.Errorf("length %d: want 13 or 18", l.Length)
	}
	if len(l.Prefixes) == 0 {
		return fmt.Errorf("no prefixes: a layout must be selected by its leading digits")
	}
	for _, p := range l.Prefixes {
		if !allDigits(p) || len(p) >= l.Length {
			return fmt.Errorf("prefix %q is not digits shorter than the code", p)
		}
	}
	if l.PLULen <= 0 {
		return fmt.Errorf("plu_len must be positive")
	}
	if l.WeightLen == 0 && l.PriceLen == 0 {
		return fmt.Errorf("a layout needs a weight or a price field")
	}
	if l.WeightDecimals < 0 || l.WeightDecimals > 3 {
		return fmt.Errorf("weight_decimals %d: want 0–3 (quantities are thousandths)", l.WeightDecimals)
	}
	used := make([]string, l.Length)
	end := l.Length
	if l.CheckDigit {
		end--
	}
	mark := func(name string, start, n int) error {
		if n == 0 {
			return nil
		}
		if n < 0 || start < 0 || start+n > end {
			return fmt.Errorf("%s at %d+%d does not fit in %d digits", name, start, n, end)
		}
		if n > 9 {
			return fmt.Errorf("%s is %d digits long, at most 9", name, n)
		}
		for i := start; i < start+n; i++ {
			if used[i] != "" {
				return fmt.Errorf("%s overlaps %s at digit %d", name, used[i], i)
			}
			used[i] = name
		}
		return nil
	}
	if err := mark("plu", l.PLUStart, l.PLULen); err != nil {
		return err
	}
	if err := mark("weight", l.WeightStart, l.WeightLen); err != nil {
		return err
	}
	if err := mark("price", l.PriceStart, l.PriceLen); err != nil {
		return err
	}
	if l.PriceCheckDigit {
		if _, n := l.verified(); n != 4 && n != 5 {
			return fmt.Errorf("price_check_digit: the verifier covers a 4- or 5-digit value, this one has %d", n)
		}
		return mark("price verifier", l.PriceCheckAt, 1)
	}
	return nil
}

// verified returns the start and length of the field a price verifier
// digit covers: the price, or the weight when there is no price.
func (l Layout) verified() (start, n int) {
	if l.PriceLen > 0 {
		return l.PriceStart, l.PriceLen
	}
	return l.WeightStart, l.WeightLen
}

// Weighted digit products of the price verifier (GS1 General
// Specifications, check digit for a 4- or 5-digit price field): "2-" is
// units(2d) minus tens(2d), "3" units(3d), "5+" units(5d) plus tens(5d), "5-"
// units(5d) minus tens(5d), each taken mod 10.
var (
	weight2minus = [10]int{0, 2, 4, 6, 8, 9, 1, 3, 5, 7}
	weight3      = [10]int{0, 3, 6, 9, 2, 5, 8, 1, 4, 7}
	weight5plus  = [10]int{0, 5, 1, 6, 2, 7, 3, 8, 4, 9}
	weight5minus = [10]int{0, 5, 9, 4, 8, 3, 7, 2, 6, 1}
)

// PriceCheckDigit computes the GS1 price/weight verifier digit of a 4- or
// 5-digit value field. Four digits: weights 2-, 2-, 3, 5-; the check is the
// units digit of 3 × the sum. Five digits: weights 5+, 2-, 5-, 5+, 2-; the
// check is the digit whose 5- product equals (10 − sum mod 10) mod 10.
// GS1's examples: 2875 → 9, 14685 → 6.
func PriceCheckDigit(value string) (byte, error) {
	if !allDigits(value) || (len(value) != 4 && len(value) != 5) {
		return 0, fmt.Errorf("%w: price verifier needs 4 or 5 digits, got %q", ErrMalformed, value)
	}
	d := func(i int) int { return int(value[i] - '0') }
	if len(value) == 4 {
		sum := weight2minus[d(0)] + weight2minus[d(1)] + weight3[d(2)] + weight5minus[d(3)]
		return byte('0' + (sum*3)%10), nil
	}
	sum := weight5plus[d(0)] + weight2minus[d(1)] + weight5minus[d(2)] + weight5plus[d(3)] + weight2minus[d(4)]
	want := (10 - sum%10) % 10
	for c, p := range weight5minus {
		if p == want {
			return byte('0' + c), nil
		}
	}
	panic("unreachable: weight5minus is a permutation of 0-9")
}

func (l Layout) matches(digits string) bool {
	if len(digits) != l.Length {
		return false
	}
	for _, p := range l.Prefixes {
		if strings.HasPrefix(digits, p) {
			return true
		}
	}
	return false
}

func (l Layout) decode(c Code, digits string) (Code, error) {
	if l.CheckDigit {
		want, _ := CheckDigit(digits[:len(digits)-1])
		if digits[len(digits)-1] != want {
			return Code{}, fmt.Errorf("%w: %s code ends in %c, check digit is %c", ErrCheckDigit, l.Name, digits[len(digits)-1], want)
		}
	}
	if l.PriceCheckDigit {
		start, n := l.verified()
		want, _ := PriceCheckDigit(digits[start : start+n])
		if got := digits[l.PriceCheckAt]; got != want {
			return Code{}, fmt.Errorf("%w: %s code's price verifier is %c, want %c for %s", ErrCheckDigit, l.Name, got, want, digits[start:start+n])
		}
	}
	c.PLU = strings.TrimLeft(digits[l.PLUStart:l.PLUStart+l.PLULen], "0")
	if c.PLU == "" {
		c.PLU = "0"
	}
	if l.WeightLen > 0 {
		w, _ := strconv.ParseInt(digits[l.WeightStart:l.WeightStart+l.WeightLen], 10, 64)
		for i := l.WeightDecimals; i < 3; i++ {
			w *= 10
		}
		c.Qty = w
	}
	if l.PriceLen > 0 {
		c.Price, _ = strconv.ParseInt(digits[l.PriceStart:l.PriceStart+l.PriceLen], 10, 64)
		c.Kind = KindPrice
	} else {
		c.Kind = KindWeight
	}
	if c.Kind == KindWeight && c.Qty <= 0 {
		return Code{}, fmt.Errorf("%w: %s code carries a zero weight", ErrMalformed, l.Name)
	}
	if c.Kind == KindPrice && c.Price <= 0 {
		return Code{}, fmt.Errorf("%w: %s code carries a zero price", ErrMalformed, l.Name)
	}
	return c, nil
}
