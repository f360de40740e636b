package fieldkit

import (
	"fmt"
	"slices"
	"time"
)

// Durations are measured figures of one kind, for a report (never for
// an assertion).
type Durations []time.Duration

// Median is the middle figure (the mean of the middle two for an even
// count); 0 for none.
func (d Durations) Median() time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return (s[(len(s)-1)/2] + s[len(s)/2]) / 2
}

// Worst is the largest figure.
func (d Durations) Worst() time.Duration {
	if len(d) == 0 {
		return 0
	}
	return slices.Max(d)
}

// String is "median M, worst W of N", rounded to milliseconds.
func (d Durations) String() string {
	return fmt.Sprintf("median %v, worst %v of %d", d.Median().Round(time.Millisecond), d.Worst().Round(time.Millisecond), len(d))
}
