package agentbench

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSaleSmall(t *testing.T) {
	r, err := Sale(context.Background(), t.TempDir(), 30)
	require.NoError(t, err)
	require.Len(t, r.Lat, 30)
	require.Len(t, r.BareLat, 30)
	f := r.Figures()
	require.Equal(t, "sale", f[0].Scenario)
	require.NotNil(t, f[0].Raw, "the sale rate has the bare-row commit beside it")
	require.Positive(t, *f[0].Raw)
	require.Contains(t, f[1].Metric, "floor")
	require.NotNil(t, f[1].Raw, "the floor has the bare-row commit beside it")
	require.Equal(t, *f[0].Raw, *f[1].Raw, "sale and floor against the same bare-row run")
	for _, x := range f[2:] {
		require.Nil(t, x.Raw, "%s has no raw limit", x.Metric)
	}
}

func TestScanToScreenSmall(t *testing.T) {
	r, err := ScanToScreen(context.Background(), t.TempDir(), 5)
	require.NoError(t, err)
	require.Len(t, r.Lat, 5, "every scan reached the UI client")
	for _, d := range r.Lat {
		require.Positive(t, d)
	}
	require.NotEmpty(t, r.Wiring)
	require.Len(t, r.Figures(), 2)
}
