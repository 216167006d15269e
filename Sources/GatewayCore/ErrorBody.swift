/// The upstream's body for errors that are not validation errors:
/// `{"detail":{"status":"...","message":"..."}}`.
public enum ErrorBody {
    /// The JSON text for `status` and `message`.
    public static func json(status: String, message: String) -> String {
        "{\"detail\":{\"status\":" + JSONText.quoted(status) + ",\"message\":" + JSONText.quoted(message) + "}}"
    }
}
