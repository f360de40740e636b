package fieldkit

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that the tests leave no goroutine behind. It calls
// goleak itself, not testkit.VerifyTestMain: this kit imports none of the
// module's packages (TestKnowsTheBinariesOnlyFromOutside).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
