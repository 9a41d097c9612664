package wire

import (
	"crypto/ed25519"
	"encoding/json"
	"testing"
	"time"
)

// The fuzz targets feed HQ's decoders untrusted bytes: they must never
// panic, and whatever they accept must satisfy the invariants the ingest
// relies on. Run one with: go test -fuzz=FuzzDecodeBatch -fuzztime=20s ./sync/wire

func FuzzDecodeBatch(f *testing.F) {
	b := sampleBatch(f, 3)
	good, _ := json.Marshal(b)
	f.Add(good)
	big, _ := Encode(sampleBatch(f, 200))
	f.Add(big)
	f.Add([]byte(`{"v":1}`))
	f.Add([]byte(`{"v":1,"store":"S","terminal":"T","db_id":"0190f0a0-0000-7000-8000-000000000000","events":[{"seq":1,"id":"0190f0a0-0000-7000-8000-000000000001","type":"a.b","at":"2026-01-01T00:00:00Z","payload":{}}]}`))
	f.Add([]byte{0x1f, 0x8b, 8, 0})
	f.Add([]byte(`null`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := DecodeBatch(data)
		if err != nil {
			if out != nil {
				t.Fatal("non-nil batch with an error")
			}
			return
		}
		if len(out.Events) == 0 || len(out.Events) > MaxBatchEvents || !ValidID(out.Store) || !ValidID(out.Terminal) {
			t.Fatalf("accepted an invalid batch: %+v", out)
		}
		var prev int64
		for _, e := range out.Events {
			if e.Seq <= prev {
				t.Fatalf("accepted seq %d after %d", e.Seq, prev)
			}
			prev = e.Seq
			_ = ValidatePayload(&e) // must not panic either
		}
	})
}

func FuzzDecodeHello(f *testing.F) {
	h, _ := json.Marshal(Hello{V: 1, Store: "S1", Terminal: "T1", DBID: "0190f0a0-0000-7000-8000-000000000000", LastSeq: 3, Clock: t0})
	f.Add(h)
	f.Add([]byte(`{"v":1,"store":"S1"}`))
	f.Add([]byte(`{"v":1,"last_seq":-1}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := DecodeHello(data)
		if err != nil {
			return
		}
		if out.LastSeq < 0 || out.FeedVersion < 0 || !ValidID(out.Store) || !ValidID(out.Terminal) {
			t.Fatalf("accepted an invalid hello: %+v", out)
		}
	})
}

func FuzzVerifyCoupon(f *testing.F) {
	seed := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	keys := map[string]ed25519.PublicKey{"k1": seed.Public().(ed25519.PublicKey)}
	c := Coupon{ID: "0190f0a0-0000-7000-8000-000000000000", KeyID: "k1", Kind: CouponPercentOff, Value: 1000, Currency: "EUR",
		NotBefore: t0.Add(-time.Hour), Expires: t0.Add(time.Hour)}
	tok, err := SignCoupon(seed, c)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tok)
	f.Add(tok[:len(tok)-3])
	f.Add(CouponPrefix + ".")
	f.Add("EP1.e30.AAAA")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		got, err := VerifyCoupon(token, keys, t0)
		if err != nil {
			return
		}
		// Anything accepted must really be signed by k1 and valid now.
		if got.KeyID != "k1" || t0.Before(got.NotBefore) || !t0.Before(got.Expires) {
			t.Fatalf("accepted %+v", got)
		}
		if _, err := ParseCoupon(token); err != nil {
			t.Fatalf("verify accepted what parse refuses: %v", err)
		}
	})
}
