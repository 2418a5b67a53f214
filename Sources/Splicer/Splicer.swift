/// Splicer: gproxy's relay engine.
public enum SplicerInfo {
    public static let version = "0.1.0"
}
