package wire

import "time"

// ProductChange is the Data of a "product" change: a product with its
// barcodes and price. Price is minor units per each, or per kilogram for
// products sold by weight.
type ProductChange struct {
	SKU      string   `json:"sku"`
	Name     string   `json:"name"`
	Unit     string   `json:"unit"` // "each" or "kg"
	TaxClass string   `json:"tax_class"`
	Price    int64    `json:"price"`
	Active   bool     `json:"active"`
	Barcodes []string `json:"barcodes,omitempty"`
}

// TaxClassChange is the Data of a "tax_class" change.
type TaxClassChange struct {
	Code   string `json:"code"`
	Name   string `json:"name"`
	RateBP int64  `json:"rate_bp"` // basis points: 1300 = 13 %
}

// CouponKeyChange is the Data of a "coupon_key" change: an HQ public key the
// terminal will accept coupon signatures from. HQ publishes a new key before
// it signs anything with it.
type CouponKeyChange struct {
	KeyID     string `json:"key_id"`
	PublicKey []byte `json:"public_key"` // Ed25519, 32 bytes
	Revoked   bool   `json:"revoked,omitempty"`
}

// RevocationChange is the Data of a "coupon_revocation" change.
type RevocationChange struct {
	CouponID  string    `json:"coupon_id"`
	Reason    string    `json:"reason,omitempty"`
	RevokedAt time.Time `json:"revoked_at"`
}

// CouponChange is the Data of a "coupon" change: a coupon issued (sold
// online) to a member, so the store can list it; the token alone is enough to
// redeem it offline.
type CouponChange struct {
	CouponID string `json:"coupon_id"`
	Member   string `json:"member,omitempty"`
	Token    string `json:"token"`
}

// MemberChange is the Data of a "member" change.
type MemberChange struct {
	MemberID   string `json:"member_id"`
	Phone      string `json:"phone,omitempty"`
	Name       string `json:"name,omitempty"`
	Tier       string `json:"tier,omitempty"`
	Points     int64  `json:"points"`      // HQ's balance when sent
	OfflineCap int64  `json:"offline_cap"` // points a store may let this member spend before HQ confirms
}

// PickupOrderChange is the Data of a "pickup_order" change.
type PickupOrderChange struct {
	OrderID  string       `json:"order_id"`
	Code     string       `json:"code"`
	Status   string       `json:"status"` // open, cancelled, fulfilled
	Customer string       `json:"customer,omitempty"`
	Phone    string       `json:"phone,omitempty"`
	Member   string       `json:"member,omitempty"`
	Paid     int64        `json:"paid"`
	Lines    []PickupLine `json:"lines"`
}

// StoreConfigChange is the Data of a "store_config" change: settings HQ
// owns for a store.
type StoreConfigChange struct {
	PointsPerUnit    int64 `json:"points_per_unit,omitempty"`    // points earned per whole currency unit spent
	PointValue       int64 `json:"point_value,omitempty"`        // minor units one point pays
	CouponOfflineCap int64 `json:"coupon_offline_cap,omitempty"` // coupon value redeemable since last sync before a manager must approve
}
