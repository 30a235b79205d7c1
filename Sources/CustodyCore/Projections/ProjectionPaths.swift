/// Where the projections live in a data directory.
public enum ProjectionPaths {
    /// The projections' SQLite file, beside the segments.
    public static func database(in dataDirectory: String) -> String {
        dataDirectory.hasSuffix("/") ? dataDirectory + "projections.sqlite" : dataDirectory + "/projections.sqlite"
    }
}
