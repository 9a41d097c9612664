package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"
)

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// EncodeBatch is Encode for a Batch, without re-scanning the event payloads:
// json.Marshal validates and compacts every json.RawMessage, which costs more
// than the rest of a terminal's upload. Payloads must be valid, compact JSON
// objects (localdb.AppendEvent checks them when the event is written); the
// output is byte-for-byte what Encode produces for compact payloads.
func EncodeBatch(b *Batch) ([]byte, error) {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	buf.WriteString(`{"v":`)
	buf.WriteString(strconv.Itoa(b.V))
	buf.WriteString(`,"store":`)
	writeString(buf, b.Store)
	buf.WriteString(`,"terminal":`)
	writeString(buf, b.Terminal)
	buf.WriteString(`,"db_id":`)
	writeString(buf, b.DBID)
	buf.WriteString(`,"sent_at":`)
	writeTime(buf, b.SentAt)
	buf.WriteString(`,"events":[`)
	for i := range b.Events {
		e := &b.Events[i]
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteString(`{"seq":`)
		buf.WriteString(strconv.FormatInt(e.Seq, 10))
		buf.WriteString(`,"id":`)
		writeString(buf, e.ID)
		buf.WriteString(`,"type":`)
		writeString(buf, e.Type)
		buf.WriteString(`,"at":`)
		writeTime(buf, e.At)
		buf.WriteString(`,"payload":`)
		if len(e.Payload) == 0 {
			buf.WriteString("null")
		} else {
			buf.Write(e.Payload)
		}
		buf.WriteByte('}')
	}
	buf.WriteString("]}")

	var out []byte
	if buf.Len() > CompressThreshold {
		var err error
		if out, err = gzipBytes(buf.Bytes()); err != nil {
			return nil, fmt.Errorf("encode batch: %w", err)
		}
	} else {
		out = bytes.Clone(buf.Bytes())
	}
	if len(out) > MaxMessageBytes {
		return nil, fmt.Errorf("encode batch: %w: %d bytes > %d", ErrTooLarge, len(out), MaxMessageBytes)
	}
	return out, nil
}

func writeString(buf *bytes.Buffer, s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '"' || c == '\\' || c >= 0x7f || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s) // rare: let encoding/json escape it
			buf.Write(b)
			return
		}
	}
	buf.WriteByte('"')
	buf.WriteString(s)
	buf.WriteByte('"')
}

func writeTime(buf *bytes.Buffer, t time.Time) {
	b, _ := t.MarshalJSON()
	buf.Write(b)
}
