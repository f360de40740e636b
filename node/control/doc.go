// Package control is the codec of control messages: the bodies of
// channel.KindControl messages, whose first byte (the tag) says what
// follows. Each tag is defined here once, with its meaning; bodies
// that two parties read (the serve list: devices write it, the node reads
// it) have their encoding here too, and a Table dispatches a body to the
// one handler its reader registered for its tag.
//
// It must not know libp2p, the store, the node, the client or anything
// else of this module: it turns bytes into values and back, and a
// reader's handlers decide what a message means to it.
package control
