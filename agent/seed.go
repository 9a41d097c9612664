package agent

import (
	"context"
	"fmt"
)

// DemoProducts is the small catalog the demo, tests and benchmarks sell
// from. Barcodes are valid EAN-13s; "APPLE" is weighed (PLU 1).
var DemoProducts = []Product{
	{SKU: "TEA500", Name: "Oolong tea 500ml", Unit: "each", TaxClass: "VAT13", Price: 450, Active: true, Barcodes: []string{"6901234567892"}},
	{SKU: "NOODLE", Name: "Beef noodles cup", Unit: "each", TaxClass: "VAT13", Price: 650, Active: true, Barcodes: []string{"6920152400777"}},
	{SKU: "MILK1L", Name: "Fresh milk 1L", Unit: "each", TaxClass: "VAT9", Price: 1290, Active: true, Barcodes: []string{"6907992500133"}},
	{SKU: "BREAD", Name: "Whole wheat bread", Unit: "each", TaxClass: "VAT9", Price: 890, Active: true, Barcodes: []string{"4006381333931"}},
	{SKU: "WATER", Name: "Mineral water 550ml", Unit: "each", TaxClass: "VAT13", Price: 200, Active: true, Barcodes: []string{"6921168509256"}},
	{SKU: "APPLE", Name: "Fuji apples", Unit: "kg", TaxClass: "VAT9", Price: 1398, Active: true, PLU: "1"},
	{SKU: "RICE5", Name: "Rice 5kg", Unit: "each", TaxClass: "VAT9", Price: 4990, Active: true, Barcodes: []string{"6937962100018"}},
	{SKU: "CHOCO", Name: "Dark chocolate", Unit: "each", TaxClass: "VAT13", Price: 1590, Active: true, Barcodes: []string{"7622300489434"}},
}

// Demo users: cashier 1001 / PIN 1234, manager 9001 / PIN 9999.
const (
	DemoCashier    = "1001"
	DemoCashierPIN = "1234"
	DemoManager    = "9001"
	DemoManagerPIN = "9999"
)

// SeedDemoCatalog loads the demo catalog, its tax classes and stock.
func SeedDemoCatalog(ctx context.Context, l *Ledger) error {
	for _, t := range []TaxClass{{Code: "VAT13", Name: "VAT 13%", RateBP: 1300}, {Code: "VAT9", Name: "VAT 9%", RateBP: 900}} {
		if err := l.UpsertTaxClass(ctx, t); err != nil {
			return fmt.Errorf("seed demo catalog: %w", err)
		}
	}
	for _, p := range DemoProducts {
		if err := l.UpsertProduct(ctx, p); err != nil {
			return fmt.Errorf("seed demo catalog: %w", err)
		}
		if _, err := l.AdjustStock(ctx, p.SKU, 1_000_000, "seed"); err != nil {
			return fmt.Errorf("seed demo catalog: %w", err)
		}
	}
	return nil
}

// SeedDemoUsers adds the demo cashier and manager.
func SeedDemoUsers(ctx context.Context, l *Ledger) error {
	if err := l.AddUser(ctx, DemoCashier, "Demo Cashier", RoleCashier, DemoCashierPIN); err != nil {
		return err
	}
	return l.AddUser(ctx, DemoManager, "Demo Manager", RoleManager, DemoManagerPIN)
}
