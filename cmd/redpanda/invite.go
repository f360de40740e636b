package main

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// Invitation over an untrusted text channel (SMS, chat): invite, accept,
// complete. The strings carry public keys only; the safety code shows
// whether anyone swapped one on the way.

func inviteCommand() *command {
	return &command{name: "invite", summary: "print an invitation to send by SMS or chat: invite", run: cmdInvite}
}

func acceptCommand() *command {
	return &command{name: "accept", summary: "answer an invitation: accept INVITATION [NAME]", run: cmdAccept}
}

func completeCommand() *command {
	return &command{name: "complete", summary: "finish your invitation with the answer: complete ANSWER [NAME]", run: cmdComplete}
}

func cmdInvite(_ context.Context, args []string, stdout, stderr io.Writer) error {
	o := clientFlags("invite", stderr)
	_, c, err := o.start(args, 0, 0, "[--home DIR]")
	if err != nil {
		return err
	}
	defer c.Close()
	inv, err := c.Invites().Create()
	if err != nil {
		return err
	}
	if *o.json {
		return printJSON(stdout, map[string]string{"invitation": inv})
	}
	fmt.Fprintln(stdout, inv)
	fmt.Fprintln(stderr, "send this to your contact; they run `redpanda accept INVITATION` and send you the answer for `redpanda complete ANSWER` (within 7 days: the invitation then expires)")
	return nil
}

func cmdAccept(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o := clientFlags("accept", stderr)
	pos, c, err := o.start(args, 1, 2, "INVITATION [NAME]")
	if err != nil {
		return err
	}
	defer c.Close()
	ag, err := c.Invites().Accept(name(pos), strings.TrimSpace(pos[0]))
	if err != nil {
		return err
	}
	defer updateNodes(ctx, c, stderr)
	if *o.json {
		return printJSON(stdout, ag)
	}
	fmt.Fprintln(stdout, ag.Answer)
	if ag.Repeated {
		fmt.Fprintf(stderr, "you accepted this invitation already on %s (channel %s): nothing new was made; the line above is the same answer, send it back if it did not arrive\nsafety code: %s\n",
			ag.UsedAt.Local().Format("2006-01-02 15:04"), ag.Channel.Name, ag.SafetyCode)
		return nil
	}
	fmt.Fprintf(stderr, "send the line above back; joined %s (channel %s)\nsafety code: %s (compare it with your contact by voice or in person)\n",
		ag.Channel.Name, ag.Channel.ID, ag.SafetyCode)
	return nil
}

func cmdComplete(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o := clientFlags("complete", stderr)
	pos, c, err := o.start(args, 1, 2, "ANSWER [NAME]")
	if err != nil {
		return err
	}
	defer c.Close()
	ag, err := c.Invites().Complete(name(pos), strings.TrimSpace(pos[0]))
	if err != nil {
		return err
	}
	defer updateNodes(ctx, c, stderr)
	if *o.json {
		return printJSON(stdout, ag)
	}
	if ag.Repeated {
		fmt.Fprintf(stdout, "already completed on %s: channel %s (%s)\nsafety code: %s\n",
			ag.UsedAt.Local().Format("2006-01-02 15:04"), ag.Channel.Name, ag.Channel.ID, ag.SafetyCode)
		return nil
	}
	fmt.Fprintf(stdout, "joined %s (channel %s)\nsafety code: %s\n", ag.Channel.Name, ag.Channel.ID, ag.SafetyCode)
	fmt.Fprintln(stderr, "compare the safety code with your contact: if it differs, someone changed a message on the way; leave the channel")
	return nil
}

// name is the optional second positional argument.
func name(pos []string) string {
	if len(pos) > 1 {
		return pos[1]
	}
	return ""
}
