/// One client connection's decisions, as pure state machines that ``HTTPHandler`` drives: what to read,
/// when to answer, how each answer ends the exchange (``StateMachine``), and when the connection has been
/// idle, or a head slow, for too long (``TimerStateMachine``).
///
/// Nothing in here touches a channel: events go in, actions come out, and the handler performs them. The
/// machines are tested without NIO, by tables of events and the actions they lead to.
enum HTTPConnection {}
