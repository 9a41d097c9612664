package scanner

import (
	"bytes"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// Suffix is the terminator a serial scanner sends after each code.
type Suffix string

// The suffixes a scanner can be configured with.
const (
	SuffixCR   Suffix = "cr"   // 0D
	SuffixLF   Suffix = "lf"   // 0A
	SuffixCRLF Suffix = "crlf" // 0D 0A
	SuffixTab  Suffix = "tab"  // 09
)

// bytes returns the wire form of s.
func (s Suffix) bytes() ([]byte, error) {
	switch s {
	case SuffixCR:
		return []byte{'\r'}, nil
	case SuffixLF:
		return []byte{'\n'}, nil
	case SuffixCRLF:
		return []byte{'\r', '\n'}, nil
	case SuffixTab:
		return []byte{'\t'}, nil
	}
	return nil, fmt.Errorf("%w: suffix %q (want cr, lf, crlf or tab)", ErrBadConfig, string(s))
}

// Symbology names reported in Scan.Symbology.
const (
	SymEAN13         = "EAN-13"
	SymEAN8          = "EAN-8"
	SymEANAddOn      = "EAN/UPC with add-on"
	SymEANUPC        = "EAN/UPC"
	SymCode128       = "Code 128"
	SymGS1128        = "GS1-128"
	SymCode39        = "Code 39"
	SymDataBar       = "GS1 DataBar"
	SymQR            = "QR Code"
	SymGS1QR         = "GS1 QR Code"
	SymDataMatrix    = "Data Matrix"
	SymGS1DataMatrix = "GS1 DataMatrix"
	SymITF           = "ITF"
	SymUnknown       = "unknown"
)

// aimNames maps full AIM identifiers (DEVICE-PROTOCOLS.md §2, AIM table).
// ]Q1 is listed as unconfirmed there; it is the plain-QR modifier in the
// AIM tables we know of.
var aimNames = map[string]string{
	"]E0": SymEAN13, "]E4": SymEAN8, "]E3": SymEANAddOn,
	"]C0": SymCode128, "]C1": SymGS1128,
	"]A0": SymCode39,
	"]e0": SymDataBar,
	"]Q1": SymQR, "]Q3": SymGS1QR,
	"]d1": SymDataMatrix, "]d2": SymGS1DataMatrix,
	"]I0": SymITF, "]I1": SymITF,
}

// aimFamilies names a symbology by its AIM code character alone, when the
// modifier is not in aimNames.
var aimFamilies = map[byte]string{
	'E': SymEANUPC, 'C': SymCode128, 'A': SymCode39, 'e': SymDataBar,
	'Q': SymQR, 'd': SymDataMatrix, 'I': SymITF,
}

// Symbology returns the symbology name of an AIM identifier such as "]E0",
// or SymUnknown.
func Symbology(aim string) string {
	if n, ok := aimNames[aim]; ok {
		return n
	}
	if len(aim) == 3 {
		if n, ok := aimFamilies[aim[1]]; ok {
			return n
		}
	}
	return SymUnknown
}

// isAIMLetter and isAIMModifier follow the pattern ^\][A-Za-z][0-9A-Za-z].
func isAIMLetter(b byte) bool { return (b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z') }
func isAIMModifier(b byte) bool {
	return isAIMLetter(b) || (b >= '0' && b <= '9')
}

// ParseFrame turns one frame (suffix already removed) into a code, the AIM
// identifier (empty without AIM) and the symbology name. With aim set, the
// frame must start with an AIM identifier ]Xn. The code must be valid UTF-8
// of printable characters; the only control character allowed is GS (1D),
// which GS1 codes use as the FNC1 separator.
func ParseFrame(frame []byte, aim bool) (code, aimID, symbology string, err error) {
	if aim {
		if len(frame) < 3 || frame[0] != ']' || !isAIMLetter(frame[1]) || !isAIMModifier(frame[2]) {
			return "", "", "", fmt.Errorf("%w: missing AIM prefix in %q", ErrGarbage, clip(frame))
		}
		aimID = string(frame[:3])
		frame = frame[3:]
	}
	if len(frame) == 0 {
		return "", "", "", fmt.Errorf("%w: empty code", ErrGarbage)
	}
	if !utf8.Valid(frame) {
		return "", "", "", fmt.Errorf("%w: invalid UTF-8 in %q", ErrGarbage, clip(frame))
	}
	for _, r := range string(frame) {
		if r == 0x1D {
			continue
		}
		if !unicode.IsPrint(r) {
			return "", "", "", fmt.Errorf("%w: non-printable %U in %q", ErrGarbage, r, clip(frame))
		}
	}
	symbology = ""
	if aim {
		symbology = Symbology(aimID)
	}
	return string(frame), aimID, symbology, nil
}

func clip(b []byte) []byte {
	if len(b) > 40 {
		return b[:40]
	}
	return b
}

// framer splits a byte stream into frames at a suffix.
type framer struct {
	suffix []byte
	max    int
	buf    []byte
	// skipping is set after an over-long frame: bytes are discarded up to
	// the next suffix.
	skipping bool
}

// frameResult is one complete frame or one framing error.
type frameResult struct {
	frame []byte
	err   error
}

// feed appends p and returns the frames and framing errors it completes.
// CR and LF bytes (and TAB with a TAB suffix) at the start of a frame are
// skipped: they are bare terminators or the rest of a CRLF sent by a
// scanner configured for CR or LF, never part of a code.
func (f *framer) feed(p []byte) []frameResult {
	var out []frameResult
	for _, b := range p {
		if len(f.buf) == 0 && !f.skipping && (b == '\r' || b == '\n' || (b == '\t' && f.suffix[0] == '\t')) {
			continue // a bare terminator or the tail of a CRLF: an empty frame
		}
		f.buf = append(f.buf, b)
		if bytes.HasSuffix(f.buf, f.suffix) {
			frame := f.buf[:len(f.buf)-len(f.suffix)]
			if f.skipping {
				f.skipping = false
			} else if len(frame) > 0 {
				out = append(out, frameResult{frame: bytes.Clone(frame)})
			}
			f.buf = f.buf[:0]
			continue
		}
		if !f.skipping && len(f.buf) >= f.max+len(f.suffix) {
			out = append(out, frameResult{err: fmt.Errorf("%w: frame longer than %d bytes", ErrTooLong, f.max)})
			f.skipping = true
		}
		if f.skipping && len(f.buf) >= len(f.suffix) {
			// keep only what could be the start of a suffix
			f.buf = append(f.buf[:0], f.buf[len(f.buf)-len(f.suffix)+1:]...)
		}
	}
	return out
}

// pending reports whether a partial frame is buffered.
func (f *framer) pending() bool { return len(f.buf) > 0 || f.skipping }

// drop discards a partial frame and returns how many bytes it held.
func (f *framer) drop() int {
	n := len(f.buf)
	f.buf, f.skipping = f.buf[:0], false
	return n
}
