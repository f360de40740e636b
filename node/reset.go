package node

import "fmt"

// Reset is the factory reset of a running node: it forgets every
// registration and the owner (routing.Registry.Reset), stops following
// the owner's node channel (ForgetOwner), and wipes the stored messages,
// sync state and every record bucket except those named in keep
// (store.DB.Wipe). The identity stays. Like its parts it may run twice.
func (n *Node) Reset(keep ...string) error {
	if err := n.Registry.Reset(); err != nil {
		return err
	}
	n.ForgetOwner()
	if err := n.Store.Wipe(keep...); err != nil {
		return fmt.Errorf("node.Reset: %w", err)
	}
	return nil
}
