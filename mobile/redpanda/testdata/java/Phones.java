// Two phone apps on the generated Java binding, against a real home node
// (TestJavaPhones in java_test.go starts the node and runs this under
// a filter that makes listing network interfaces fail, as on Android
// 11+). Phone A pairs with the node from the QR code's text, makes a
// channel and hands its key and a hop ticket to phone B; they write
// both ways through the Listener; A pauses while B posts and, resumed,
// receives each message once; then history, node status, error codes, a
// Cancel, a QR code and a backup kept on the node.
//
// usage: java Phones PAIRING-URI WORKDIR
// It prints one line per step and "PASS" at the end, and exits non-zero
// on the first failure.

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import redpanda.Cancel;
import redpanda.Client;
import redpanda.Event;
import redpanda.Listener;
import redpanda.Message;
import redpanda.MessageList;
import redpanda.Node;
import redpanda.NodeStatus;
import redpanda.Options;
import redpanda.PairingCode;
import redpanda.Redpanda;
import redpanda.SendResult;

public class Phones {
	// A phone app's listener: it keeps what arrives, as a chat screen's
	// model would, and notes the thread it is called on.
	static final class Inbox implements Listener {
		final List<Message> messages = new ArrayList<>();
		final List<Event> events = new ArrayList<>();
		final Set<String> threads = new HashSet<>();

		@Override
		public synchronized void onMessage(Message m) {
			messages.add(m);
			threads.add(Thread.currentThread().getName());
			notifyAll();
		}

		@Override
		public synchronized void onEvent(Event e) {
			events.add(e);
			notifyAll();
		}

		interface Cond {
			boolean holds();
		}

		// waitFor waits until cond holds (a generous bound on liveness,
		// not a speed check).
		synchronized void waitFor(String what, Cond cond) throws InterruptedException {
			long deadline = System.currentTimeMillis() + 60_000;
			while (!cond.holds()) {
				long left = deadline - System.currentTimeMillis();
				if (left <= 0) {
					throw new AssertionError("no " + what + " within 60 s; messages " + texts(null) + ", events " + kinds());
				}
				wait(left);
			}
		}

		synchronized List<String> texts(Boolean mine) {
			List<String> out = new ArrayList<>();
			for (Message m : messages) {
				if (mine == null || m.getMine() == mine) {
					out.add(m.getText());
				}
			}
			return out;
		}

		synchronized int count(Boolean mine) {
			return texts(mine).size();
		}

		synchronized List<String> kinds() {
			List<String> out = new ArrayList<>();
			for (Event e : events) {
				out.add(e.getKind());
			}
			return out;
		}

		synchronized boolean hasEvent(String kind, String messageID, String reader) {
			for (Event e : events) {
				if (e.getKind().equals(kind) && (messageID == null || e.getMessageID().equals(messageID))
						&& (reader == null || e.getReader().equals(reader))) {
					return true;
				}
			}
			return false;
		}
	}

	static void check(boolean ok, String what) {
		if (!ok) {
			throw new AssertionError(what);
		}
	}

	static void step(String s) {
		System.out.println("STEP " + s);
	}

	// expectCode runs a call that must fail with code.
	interface Call {
		void run() throws Exception;
	}

	static void expectCode(String what, long code, Call call) throws Exception {
		try {
			call.run();
		} catch (Exception e) {
			long got = Redpanda.errorCode(e);
			check(got == code, what + ": code " + got + " (" + Redpanda.errorName(got) + "), want " + code
					+ " (" + Redpanda.errorName(code) + "): " + e.getMessage());
			check(e.getMessage().startsWith(Redpanda.errorName(code) + ": "), what + ": message " + e.getMessage());
			check(Redpanda.errorCodeOf(e.getMessage()) == code, what + ": code from the message");
			return;
		}
		throw new AssertionError(what + ": no error");
	}

	static Client open(Path home, Inbox inbox) throws Exception {
		Options o = Redpanda.newOptions(home.toString());
		Client c = Redpanda.open(o);
		c.setListener(inbox);
		return c;
	}

	public static void main(String[] args) throws Exception {
		int code = 1;
		try {
			run(args[0], Paths.get(args[1]));
			System.out.println("PASS");
			code = 0;
		} catch (Throwable t) {
			t.printStackTrace();
		}
		// Go's threads attached to the JVM for callbacks are not daemon
		// threads: a desktop JVM would wait for them forever (an Android
		// app's process never returns from main).
		System.exit(code);
	}

	static void run(String uri, Path work) throws Exception {
		step("open phone A; check the pairing code " + uri);
		Inbox ia = new Inbox();
		Client a = open(work.resolve("phone-a"), ia);
		PairingCode pc = Redpanda.checkPairingCode(uri);
		check(pc.getNodeID().startsWith("12D3KooW") && pc.addrs().size() > 0, "pairing code names no node");
		expectCode("a pairing code that is not one", Redpanda.CodeBadPairingCode, () -> Redpanda.checkPairingCode("hello"));

		step("pair A with the node");
		Node node = a.pair(uri, 0, null);
		check(node.getID().equals(pc.getNodeID()) && node.getHop() == 0 && node.getRegistered(),
				"paired node " + node.getID() + " hop " + node.getHop());
		check(a.ownedNode().equals(pc.getNodeID()), "owned node");
		a.connect(0, null);
		check(a.isOnline(), "A online after connect");

		step("node status");
		NodeStatus st = a.nodeStatus("", 0, null);
		check(st.getPairingState().equals("owned") && st.getOwner().equals(a.id()) && st.getNodeID().equals(pc.getNodeID()),
				"status: " + st.getPairingState() + " owner " + st.getOwner());
		check(st.getJSON().contains("\"pairing\"") && !st.getSummary().isEmpty(), "status report");

		step("A makes a channel; B joins with its key and A's hop ticket");
		String key = a.createChannel("family");
		Inbox ib = new Inbox();
		Client b = open(work.resolve("phone-b"), ib);
		String ticket = a.issueTicket(b.id(), 30);
		redpanda.Ticket t = b.setTicket(ticket);
		check(t.getHop() == 1 && t.getOwner().equals(a.id()), "ticket hop " + t.getHop());
		redpanda.Channel ch = b.joinChannel("family", key);
		check(ch.getCapability().equals("full"), "capability " + ch.getCapability());
		b.connect(0, null);
		check(b.nodes().size() == 1 && b.nodes().get(0).getID().equals(pc.getNodeID()), "B's node from the hint");

		step("both ways through the Listener");
		SendResult r = a.send("family", "hello from A", 0, null);
		check(r.getDelivered() && r.ackedBy().size() == 1 && r.ackedBy().get(0).equals(pc.getNodeID()), "A's send: " + r.getID());
		ib.waitFor("A's message at B", () -> ib.count(false) == 1);
		Message got = ib.messages.get(0);
		check(got.getText().equals("hello from A") && got.getAuthor().equals(a.id()) && got.getID().equals(r.getID()),
				"B got " + got.getText());
		SendResult rb = b.send("family", "hello from B", 0, null);
		check(rb.getDelivered(), "B's send");
		ia.waitFor("B's message and B's receipt at A", () -> ia.count(false) == 1
				&& ia.hasEvent(Redpanda.EventReceipt, r.getID(), b.id()));
		check(ia.hasEvent(Redpanda.EventNodeConnected, null, null), "A's node-connected event");
		check(!ia.threads.contains(Thread.currentThread().getName()), "callbacks on the caller's thread");

		step("A pauses while B posts; resumed, A gets each message once");
		a.pause();
		check(a.isPaused() && !a.isOnline(), "A paused");
		final int n = 5;
		Set<String> sent = new HashSet<>();
		for (int i = 0; i < n; i++) {
			SendResult s = b.send("family", "while A sleeps " + i, 0, null);
			check(s.getDelivered(), "B's send while A sleeps");
			sent.add(s.getID());
		}
		MessageList offline = a.history("family", 0);
		check(offline.size() >= 2 && a.isPaused(), "history while paused");
		final int before = ia.count(false);
		long resumed = System.nanoTime();
		a.resume(0, null);
		ia.waitFor("the first message posted while A slept", () -> ia.count(false) > before);
		long firstMs = (System.nanoTime() - resumed) / 1_000_000;
		ia.waitFor("all messages posted while A slept", () -> ia.count(false) >= before + n);
		Thread.sleep(500); // duplicates would come right behind
		Map<String, Integer> times = new HashMap<>();
		synchronized (ia) {
			for (Message m : ia.messages) {
				times.merge(m.getID(), 1, Integer::sum);
			}
		}
		for (String id : sent) {
			check(times.getOrDefault(id, 0) == 1, "message " + id + " called back " + times.get(id) + " times");
		}
		check(ia.count(false) == before + n, "A's messages from B: " + ia.texts(false));
		check(ia.hasEvent(Redpanda.EventPaused, null, null) && ia.hasEvent(Redpanda.EventResumed, null, null), "pause events");
		System.out.println("MEASURE resume-to-first-missed-message-ms " + firstMs);

		step("history and pages");
		MessageList all = a.history("family", 0);
		check(all.size() == 2 + n, "history of " + all.size());
		Set<String> ids = new HashSet<>();
		for (long i = 0; i < all.size(); i++) {
			check(ids.add(all.get(i).getID()), "message twice in history");
		}
		check(all.get(0).getText().equals("hello from A") && all.get(0).deliveredTo().size() == 1, "first message and receipt");
		List<String> paged = new ArrayList<>();
		String cursor = "";
		while (true) {
			MessageList page = a.historyBefore("family", cursor, 2);
			if (page.size() == 0) {
				break;
			}
			for (long i = page.size() - 1; i >= 0; i--) {
				paged.add(page.get(i).getID());
			}
			cursor = page.get(0).getID();
		}
		check(paged.size() == all.size() && paged.get(0).equals(all.get(all.size() - 1).getID()), "paged " + paged.size());

		step("error codes, a Cancel, a timeout");
		expectCode("send to an unknown channel", Redpanda.CodeUnknownChannel, () -> a.send("nope", "x", 0, null));
		expectCode("a bad channel name", Redpanda.CodeBadName, () -> a.createChannel("a b"));
		expectCode("pair with a damaged code", Redpanda.CodeBadPairingCode, () -> b.pair("RPPAIR1:x", 0, null));
		Cancel cancel = Redpanda.newCancel();
		cancel.cancel();
		check(cancel.isCancelled(), "cancel");
		expectCode("a cancelled status call", Redpanda.CodeCancelled, () -> a.nodeStatus("", 0, cancel));
		expectCode("B is not the node's owner", Redpanda.CodeNotOwner, () -> b.nodeStatus(pc.getNodeID(), 0, null));

		step("QR code of a read-only key");
		String ro = a.shareChannel("family", "read", true);
		byte[] png = a.shareChannelQR("family", "read", 400);
		Files.write(work.resolve("read-key.png"), png);
		Files.write(work.resolve("read-key.txt"), ro.getBytes("UTF-8"));
		check(png.length > 100 && png[1] == 'P' && png[2] == 'N' && png[3] == 'G', "PNG");

		step("backup on the node; restored on a new phone from the pairing code and the passphrase");
		String pass = "correct horse battery staple";
		a.backupToNode(pass, 0, null);
		Path restored = work.resolve("phone-c");
		expectCode("a wrong passphrase", Redpanda.CodeNoBackup, () -> Redpanda.restoreFromNode(restored.toString(), uri, "not the passphrase at all", 0, null));
		Redpanda.restoreFromNode(restored.toString(), uri, pass, 0, null);
		Client c = Redpanda.open(Redpanda.newOptions(restored.toString()));
		check(c.id().equals(a.id()) && c.channels().size() == 1 && c.channels().get(0).getName().equals("family"),
				"restored identity and channels");
		c.close();

		a.close();
		b.close();
		expectCode("a closed client", Redpanda.CodeClosed, () -> a.channels());
	}
}
