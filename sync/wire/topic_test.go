package wire

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTopicsBuildAndParse(t *testing.T) {
	tp := NewTopics("")
	require.Equal(t, "edgepos/v1/stores/S1/terminals/T1/up/events", tp.Events("S1", "T1"))
	require.Equal(t, "edgepos/v1/stores/+/terminals/+/up/#", tp.UpFilter())
	require.Equal(t, "$share/hq/edgepos/v1/stores/+/terminals/+/up/#", Shared("hq", tp.UpFilter()))
	require.Equal(t, "x/y", NewTopics("x/y/").Prefix)

	good := []struct {
		topic string
		want  Topic
	}{
		{tp.Hello("S1", "T1"), Topic{Kind: KindHello, Store: "S1", Terminal: "T1"}},
		{tp.Events("s-2", "lane_3"), Topic{Kind: KindEvents, Store: "s-2", Terminal: "lane_3"}},
		{tp.Ack("S1", "T1"), Topic{Kind: KindAck, Store: "S1", Terminal: "T1"}},
		{tp.Status("S1", "T1"), Topic{Kind: KindStatus, Store: "S1", Terminal: "T1"}},
		{tp.Changes("S1"), Topic{Kind: KindChanges, Store: "S1"}},
	}
	for _, g := range good {
		t.Run(g.topic, func(t *testing.T) {
			got, err := tp.Parse(g.topic)
			require.NoError(t, err)
			require.Equal(t, g.want, got)
		})
	}
	bad := []string{
		"",
		"other/v1/stores/S1/terminals/T1/up/events",
		"edgepos/v1",
		"edgepos/v1/stores",
		"edgepos/v1/shops/S1/terminals/T1/up/events",
		"edgepos/v1/stores/+/terminals/T1/up/events",
		"edgepos/v1/stores/S1/terminals/#/up/events",
		"edgepos/v1/stores/S1/terminals/T1/up/other",
		"edgepos/v1/stores/S1/terminals/T1/up/events/extra",
		"edgepos/v1/stores/S1/terminals/T1",
		"edgepos/v1/stores//terminals/T1/up/events",
		"edgepos/v1/stores/S1/down/other",
		"edgepos/v1/stores/S1/tills/T1/up/events",
	}
	for _, b := range bad {
		t.Run("bad "+b, func(t *testing.T) {
			_, err := tp.Parse(b)
			require.ErrorIs(t, err, ErrTopic)
		})
	}
}

func TestValidID(t *testing.T) {
	for _, s := range []string{"S1", "store-01", "a.b_c", "0"} {
		require.True(t, ValidID(s), s)
	}
	for _, s := range []string{"", "-a", "a/b", "a+b", "a#", "a b", string(make([]byte, 65))} {
		require.False(t, ValidID(s), s)
	}
}
