package supervisor

import (
	"context"
	"fmt"
)

// Stream names one of a process's two logs.
type Stream string

// The two logs supervisord keeps for a process.
const (
	Stdout Stream = "stdout"
	Stderr Stream = "stderr"
)

// LogSize returns the current size in bytes of a process's log: tailProcess*Log asked for no bytes answers
// with the log's size alone.
func (c *Client) LogSize(ctx context.Context, name string, s Stream) (int64, error) {
	var res []any
	if err := c.call(ctx, &res, "supervisor.tailProcess"+s.method()+"Log", name, 0, 0); err != nil {
		return 0, c.fail(err)
	}
	if len(res) != 3 {
		return 0, c.fail(fmt.Errorf("tail %s: want [bytes, offset, overflow], got %d values", name, len(res)))
	}
	var size int64
	switch v := res[1].(type) {
	case int64:
		size = v
	case int:
		size = int64(v)
	default:
		return 0, c.fail(fmt.Errorf("tail %s: offset is %T, not an integer", name, res[1]))
	}
	if size < 0 {
		return 0, c.fail(fmt.Errorf("tail %s: negative log size %d", name, size))
	}
	return size, nil
}

// ReadLog returns length bytes (at most 1 MiB) of a process's log from offset, through
// readProcess*Log. Bytes that XML cannot carry arrive replaced (see decodeResponse).
func (c *Client) ReadLog(ctx context.Context, name string, s Stream, offset, length int64) (string, error) {
	if offset < 0 || length <= 0 || length > 1<<20 {
		return "", fmt.Errorf("read log %s: offset %d and length %d out of range", name, offset, length)
	}
	var text string
	if err := c.call(ctx, &text, "supervisor.readProcess"+s.method()+"Log", name, int(offset), int(length)); err != nil {
		return "", c.fail(err)
	}
	return text, nil
}

func (s Stream) method() string {
	if s == Stderr {
		return "Stderr"
	}
	return "Stdout"
}
