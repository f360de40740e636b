// The one Android class gobind's Java support code (go.Seq) names, for
// compiling the binding on a desktop JVM (mobile/jvm/build.sh). go.Seq
// only passes it through to Go (Seq.setContext); an app on a desktop JVM
// never calls that. Android itself has the real class.
package android.content;

public class Context {
}
