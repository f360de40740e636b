// Package control is the codec of control messages: the bodies of
// channel.KindControl messages, whose first byte (the tag) says what
// follows. Each tag is defined here once, with its meaning; the bodies
// of the serve list, friend-path frames and contact lookups are encoded
// and decoded here too. Three bodies keep their codec beside their
// meaning and only take their tag from here: adverts (node/routing),
// node reports (node/report) and the device layer's JSON (the client:
// its items are the client's state). A Table dispatches a body to the
// one handler its reader registered for its tag.
//
// It must not know libp2p, the store, the node, the client or anything
// else of this module: it turns bytes into values and back, and a
// reader's handlers decide what a message means to it.
package control
