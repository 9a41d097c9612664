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
	return mark("price", l.PriceStart, l.PriceLen)
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
