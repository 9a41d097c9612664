package agent

import (
	"context"
	"time"
)

// DeviceState is a device's state as the UI and HQ see it (UnifiedPOS:
// closed, idle, busy, error).
type DeviceState struct {
	Name   string    `json:"name"`
	Kind   string    `json:"kind"` // scanner, printer, shelf
	State  string    `json:"state"`
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
}

// SyncState is the sync link's state for the status bar.
type SyncState struct {
	Online        bool      `json:"online"`
	Backlog       int64     `json:"backlog"`
	OldestUnacked time.Time `json:"oldest_unacked,omitzero"`
	LastAck       time.Time `json:"last_ack,omitzero"`
	Rejected      int64     `json:"rejected"`
}

// Alert is an alert from the shelves: low_stock, shrink, ambiguous and
// sensor_offline, and the recoveries low_stock_cleared and sensor_online
// (see the Alert* kinds).
type Alert struct {
	Kind   string    `json:"kind"`
	Shelf  string    `json:"shelf"`
	Slot   string    `json:"slot,omitempty"`
	SKU    string    `json:"sku,omitempty"`
	Count  int64     `json:"count,omitempty"`
	Grams  int64     `json:"grams,omitempty"` // the stable weight it is based on
	Detail string    `json:"detail,omitempty"`
	At     time.Time `json:"at"`
}

// SystemStatus is everything the status bar shows.
type SystemStatus struct {
	Store    string        `json:"store"`
	Terminal string        `json:"terminal"`
	Version  string        `json:"version"`
	Sync     SyncState     `json:"sync"`
	Devices  []DeviceState `json:"devices"`
	Alerts   []Alert       `json:"alerts"`
}

// StatusSource reports the system status; the agent runtime implements it.
type StatusSource interface {
	Status(ctx context.Context) SystemStatus
}

// Hardware is what the API may ask of the devices; the runtime implements
// it over the drivers. Every method returns promptly: a device fault never
// blocks a sale.
type Hardware interface {
	// KickDrawer opens the cash drawer (ESC p).
	KickDrawer(ctx context.Context) error
	// PrintNow wakes the print worker (a reprint was queued).
	PrintNow()
	// ReceiptText renders a sale's receipt as plain text for the preview.
	ReceiptText(ctx context.Context, saleID string) (string, error)
}
