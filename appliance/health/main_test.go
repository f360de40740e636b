package health

import (
	"testing"

	"github.com/redpanda-p2p/homenode/internal/testkit"
)

func TestMain(m *testing.M) { testkit.VerifyTestMain(m) }
