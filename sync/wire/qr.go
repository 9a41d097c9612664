package wire

import "strings"

// QR texts the store scans besides products and coupons. They are plain
// prefixed strings, short enough for a small QR code, so a scanner in
// keyboard-wedge mode can type them too.
const (
	// MemberQRPrefix starts a member's QR: "EPM1:<member id>".
	MemberQRPrefix = "EPM1:"
	// PickupQRPrefix starts a pickup order's QR: "EPP1:<store>:<code>".
	// The store id lets a terminal tell a code of another store from an
	// unknown one while offline.
	PickupQRPrefix = "EPP1:"
)

// MemberQR returns the QR text of member id.
func MemberQR(id string) string { return MemberQRPrefix + id }

// ParseMemberQR returns the member id of a member QR text; ok is false
// for any other text.
func ParseMemberQR(s string) (id string, ok bool) {
	id, ok = strings.CutPrefix(strings.TrimSpace(s), MemberQRPrefix)
	if !ok || id == "" || len(id) > MaxMemberIDBytes || strings.ContainsAny(id, " \t\r\n") {
		return "", false
	}
	return id, true
}

// PickupQR returns the QR text of pickup code at store.
func PickupQR(store, code string) string { return PickupQRPrefix + store + ":" + code }

// ParsePickupQR splits a pickup QR text into store and code; ok is false
// for any other text (a bare typed code, say).
func ParsePickupQR(s string) (store, code string, ok bool) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), PickupQRPrefix)
	if !ok {
		return "", "", false
	}
	store, code, ok = strings.Cut(rest, ":")
	if !ok || !ValidID(store) || !ValidPickupCode(code) {
		return "", "", false
	}
	return store, code, true
}

// ValidPickupCode reports whether s can be a pickup code: 4 to 32 of
// A-Z a-z 0-9 and '-', so it can be typed from a phone screen.
func ValidPickupCode(s string) bool {
	if len(s) < 4 || len(s) > 32 {
		return false
	}
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}
