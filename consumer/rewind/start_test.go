package rewind

import (
	"maps"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/pkg/testenv"
)

// TestParseAndValidateStart: what --from-offset and --from-time accept,
// and the exact errors users read for what they do not.
func TestParseAndValidateStart(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name, offsets, at string
		want              map[int]int64
		wantErr           string
	}{
		{name: "nothing given is the start of every partition"},
		{name: "one offset for every partition", offsets: "1200", want: map[int]int64{AllPartitions: 1200}},
		{name: "offsets per partition", offsets: "0:1200, 3:50", want: map[int]int64{0: 1200, 3: 50}},
		{name: "a time in the past", at: "2026-12-07T11:00:00Z"},
		{name: "a time with an offset from UTC", at: "2026-12-07T12:30:00+01:00"},
		{name: "a negative offset", offsets: "-5",
			wantErr: `--from-offset="-5": want one offset for every partition (1200) or PARTITION:OFFSET pairs (0:1200,3:50)`},
		{name: "a partition without an offset", offsets: "0:",
			wantErr: `--from-offset="0:": want one offset for every partition (1200) or PARTITION:OFFSET pairs (0:1200,3:50)`},
		{name: "a partition given twice", offsets: "1:5,1:7",
			wantErr: `--from-offset="1:5,1:7": want each partition once (partition 1 twice)`},
		{name: "not a number", offsets: "first",
			wantErr: `--from-offset="first": want one offset for every partition (1200) or PARTITION:OFFSET pairs (0:1200,3:50)`},
		{name: "a time that is not RFC 3339", at: "2026-12-07 11:00",
			wantErr: `--from-time="2026-12-07 11:00": want an RFC 3339 time, e.g. 2026-12-07T15:04:05Z`},
		{name: "a time in the future", at: "2026-12-07T12:00:01Z",
			wantErr: `--from-time="2026-12-07T12:00:01Z": want a time not in the future (now is 2026-12-07T12:00:00Z)`},
		{name: "both an offset and a time", offsets: "5", at: "2026-12-07T11:00:00Z",
			wantErr: `--from-time="2026-12-07T11:00:00Z": want no time when --from-offset is set`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			offs, oerr := ParseOffsets(c.offsets)
			at, terr := ParseTime(c.at)
			err := oerr
			if err == nil {
				err = terr
			}
			if err == nil {
				err = Start{Offsets: offs, Time: at}.Validate(now)
			}
			if got := testenv.ErrText(err); got != c.wantErr {
				t.Fatalf("error %q, want %q", got, c.wantErr)
			}
			if err == nil && !maps.Equal(offs, c.want) {
				t.Fatalf("offsets %v, want %v", offs, c.want)
			}
		})
	}
}
