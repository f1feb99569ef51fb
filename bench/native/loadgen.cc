// The serving benchmark's native load generator: the closed loop of bench/loadgen.py, in C++, so that the
// client takes as little as possible of the cores it shares with the server under test (in the serving
// runs the Python client took 0.25-0.45 ms of CPU per request, this one 0.1-0.25). Same budget rules, same
// checks.
//
//   loadgen grpc-unary  --target HOST:PORT --method /pkg.Service/Method --request FILE [common options]
//   loadgen grpc-stream --target HOST:PORT --method /pkg.Service/Method --request FILE [common options]
//   loadgen http        --target HOST:PORT --request FILE [common options]
//
//   common: --clients N (concurrent requests) --seconds S and/or --requests N (the budget: no request starts
//           after S seconds once every client started two, nor beyond N in all) --expect BYTES (every answer
//           must contain them) [--metadata KEY=VALUE]... [--sample-dir DIR --sample-every K]
//
// grpc-unary: N unary calls in flight on one channel, the request file's bytes as each call's message.
// grpc-stream: one bidirectional stream with N requests in flight; each message is the request file's bytes
//   as field 2 and the request's index (decimal) as field 1, and each answer names the index it answers in
//   its field 1 (sightd.v1.RecognizeStreamRequest / RecognizeStreamResponse).
// http: N keep-alive HTTP/1.1 connections, the request file holding the whole request (head and body);
//   answers must be 200, with Content-Length or chunked bodies; a connection the server closes after an
//   answer is opened again for the next request.
//
// Every answer must be a success (gRPC status OK, HTTP 200) holding --expect; the first that is not ends the
// run with exit status 1 and the reason on stderr. With --sample-dir, the first answer and every K'th are
// written there (answer-<index>.bin) for the caller's full parse. Prints one JSON line: elapsed (seconds from
// the first request sent to the last answer), latencies (seconds, one per answer), cpu_seconds (this
// process, every thread, over the run).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string mode;
  std::string target;
  std::string method;
  std::string request;  // the request file's bytes
  std::string expect;
  std::vector<std::pair<std::string, std::string>> metadata;
  int clients = 1;
  std::optional<double> seconds;
  std::optional<long> requests;
  std::string sample_dir;
  long sample_every = 0;
};

[[noreturn]] void fail(const std::string& why) {
  std::fprintf(stderr, "loadgen: %s\n", why.c_str());
  std::exit(1);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot read " + path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

Options parse(int argc, char** argv) {
  if (argc < 2) fail("usage: loadgen grpc-unary|grpc-stream|http --target HOST:PORT ... (see the source)");
  Options o;
  o.mode = argv[1];
  if (o.mode != "grpc-unary" && o.mode != "grpc-stream" && o.mode != "http") fail("unknown mode " + o.mode);
  for (int i = 2; i < argc; i += 2) {
    std::string name = argv[i];
    if (i + 1 >= argc) fail(name + " needs a value");
    std::string value = argv[i + 1];
    try {
      if (name == "--target") o.target = value;
      else if (name == "--method") o.method = value;
      else if (name == "--request") o.request = read_file(value);
      else if (name == "--expect") o.expect = value;
      else if (name == "--clients") o.clients = std::stoi(value);
      else if (name == "--seconds") o.seconds = std::stod(value);
      else if (name == "--requests") o.requests = std::stol(value);
      else if (name == "--sample-dir") o.sample_dir = value;
      else if (name == "--sample-every") o.sample_every = std::stol(value);
      else if (name == "--metadata") {
        auto equal = value.find('=');
        if (equal == std::string::npos) fail("--metadata wants KEY=VALUE");
        o.metadata.emplace_back(value.substr(0, equal), value.substr(equal + 1));
      } else fail("unknown option " + name);
    } catch (const std::logic_error&) {
      fail("bad value for " + name + ": " + value);
    }
  }
  if (o.target.empty() || o.request.empty()) fail("--target and --request are required");
  if (o.mode != "http" && o.method.empty()) fail("--method is required for gRPC");
  if (o.clients < 1) fail("--clients must be at least 1");
  if (!o.seconds && !o.requests) fail("a load needs --seconds, --requests or both");
  return o;
}

// bench/loadgen.py's Budget: how many requests may still start.
class Budget {
 public:
  Budget(std::optional<long> requests, std::optional<double> seconds, long minimum)
      : requests_(requests), seconds_(seconds), minimum_(minimum) {}
  void start() {
    if (seconds_) deadline_ = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                 std::chrono::duration<double>(*seconds_));
  }
  std::optional<long> take() {
    if (requests_ && started_ >= *requests_) return std::nullopt;
    if (seconds_ && started_ >= minimum_ && Clock::now() >= deadline_) return std::nullopt;
    return started_++;
  }

 private:
  std::optional<long> requests_;
  std::optional<double> seconds_;
  long minimum_;
  long started_ = 0;
  Clock::time_point deadline_{};
};

double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

class Recorder {
 public:
  explicit Recorder(const Options& options) : options_(options) {}

  void check(long index, const std::string& answer) {
    if (answer.find(options_.expect) == std::string::npos) {
      fail("answer " + std::to_string(index) + " lacks \"" + options_.expect + "\": " + answer.substr(0, 300));
    }
    if (!options_.sample_dir.empty() && (index == 0 || (options_.sample_every > 0 && index % options_.sample_every == 0))) {
      std::ofstream out(options_.sample_dir + "/answer-" + std::to_string(index) + ".bin", std::ios::binary);
      out << answer;
    }
  }

  void answered(Clock::time_point sent) {
    latencies_.push_back(std::chrono::duration<double>(Clock::now() - sent).count());
  }

  void begin() {
    cpu_ = cpu_seconds();
    started_ = Clock::now();
  }

  void print() const {
    double elapsed = std::chrono::duration<double>(Clock::now() - started_).count();
    std::ostringstream out;
    out.precision(9);
    out << "{\"elapsed\": " << elapsed << ", \"cpu_seconds\": " << cpu_seconds() - cpu_ << ", \"latencies\": [";
    for (size_t i = 0; i < latencies_.size(); ++i) out << (i ? ", " : "") << latencies_[i];
    out << "]}\n";
    std::fputs(out.str().c_str(), stdout);
  }

 private:
  const Options& options_;
  std::vector<double> latencies_;
  double cpu_ = 0;
  Clock::time_point started_{};
};

std::string to_string(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) fail("cannot read an answer's bytes");
  std::string out;
  for (const auto& slice : slices) out.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  return out;
}

grpc::ByteBuffer to_buffer(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

std::shared_ptr<grpc::Channel> open_channel(const Options& o) {
  grpc::ChannelArguments arguments;
  arguments.SetMaxReceiveMessageSize(64 << 20);
  arguments.SetMaxSendMessageSize(64 << 20);
  auto channel = grpc::CreateCustomChannel(o.target, grpc::InsecureChannelCredentials(), arguments);
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) fail("cannot connect to " + o.target);
  return channel;
}

void add_metadata(const Options& o, grpc::ClientContext& context) {
  for (const auto& [key, value] : o.metadata) context.AddMetadata(key, value);
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(10));  // as the Python client (timeout=600)
}

// --- gRPC, unary ------------------------------------------------------------------------------------------

void grpc_unary(const Options& o) {
  auto channel = open_channel(o);
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue queue;
  const grpc::ByteBuffer request = to_buffer(o.request);
  struct Call {
    long index = 0;
    Clock::time_point sent;
    grpc::ClientContext context;
    grpc::ByteBuffer answer;
    grpc::Status status;
    std::unique_ptr<grpc::GenericClientAsyncResponseReader> reader;
  };
  Budget budget(o.requests, o.seconds, 2L * o.clients);
  Recorder recorder(o);
  int in_flight = 0;
  auto start = [&](long index) {
    auto* call = new Call;
    call->index = index;
    add_metadata(o, call->context);
    call->sent = Clock::now();
    call->reader = stub.PrepareUnaryCall(&call->context, o.method, request, &queue);
    call->reader->StartCall();
    call->reader->Finish(&call->answer, &call->status, call);
    ++in_flight;
  };
  recorder.begin();
  budget.start();
  for (int i = 0; i < o.clients; ++i) {
    if (auto index = budget.take()) start(*index);
  }
  void* tag = nullptr;
  bool ok = false;
  while (in_flight > 0 && queue.Next(&tag, &ok)) {
    std::unique_ptr<Call> call(static_cast<Call*>(tag));
    --in_flight;
    if (!ok || !call->status.ok()) {
      fail("call " + std::to_string(call->index) + " failed: code " + std::to_string(call->status.error_code()) +
           ", " + call->status.error_message());
    }
    recorder.answered(call->sent);
    recorder.check(call->index, to_string(call->answer));
    if (auto index = budget.take()) start(*index);
  }
  recorder.print();
  queue.Shutdown();
  while (queue.Next(&tag, &ok)) {
  }
}

// --- gRPC, one bidirectional stream -------------------------------------------------------------------------

void append_varint(std::string& out, uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7F) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

std::string bytes_field(int number, const std::string& data) {
  std::string out;
  append_varint(out, static_cast<uint64_t>(number) << 3 | 2);
  append_varint(out, data.size());
  return out + data;
}

// The first length-delimited field `number` at the top level of a message.
std::optional<std::string> read_bytes_field(const std::string& data, int number) {
  size_t position = 0;
  auto varint = [&]() {
    uint64_t value = 0;
    for (int shift = 0; position < data.size() && shift < 64; shift += 7) {
      auto byte = static_cast<uint8_t>(data[position++]);
      value |= static_cast<uint64_t>(byte & 0x7F) << shift;
      if (!(byte & 0x80)) return value;
    }
    fail("a truncated varint in an answer");
  };
  while (position < data.size()) {
    uint64_t key = varint();
    switch (key & 7) {
      case 0: varint(); break;
      case 1: position += 8; break;
      case 5: position += 4; break;
      case 2: {
        uint64_t length = varint();
        if (position + length > data.size()) fail("a truncated field in an answer");
        if (static_cast<int>(key >> 3) == number) return data.substr(position, length);
        position += length;
        break;
      }
      default: fail("an unsupported wire type in an answer");
    }
  }
  return std::nullopt;
}

void grpc_stream(const Options& o) {
  auto channel = open_channel(o);
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue queue;
  grpc::ClientContext context;
  add_metadata(o, context);
  const std::string inner = bytes_field(2, o.request);
  enum Tag : intptr_t { kStart = 1, kWrite, kRead, kWritesDone, kFinish };
  auto stream = stub.PrepareCall(&context, o.method, &queue);
  Budget budget(o.requests, o.seconds, 2L * o.clients);
  Recorder recorder(o);
  std::map<long, Clock::time_point> sent;
  std::deque<long> to_send;
  grpc::ByteBuffer writing;
  grpc::ByteBuffer answer;
  grpc::Status status;
  bool write_pending = false;
  bool done_writing = false;
  bool spent = false;
  auto next = [&]() {
    // Requests wait in to_send until the write before them completed (one write at a time).
    if (!write_pending && !to_send.empty()) {
      long index = to_send.front();
      to_send.pop_front();
      writing = to_buffer(bytes_field(1, std::to_string(index)) + inner);
      sent[index] = Clock::now();
      stream->Write(writing, reinterpret_cast<void*>(kWrite));
      write_pending = true;
    } else if (spent && !write_pending && to_send.empty() && sent.empty() && !done_writing) {
      stream->WritesDone(reinterpret_cast<void*>(kWritesDone));
      done_writing = true;
    }
  };
  auto refill = [&]() {
    while (!spent && static_cast<long>(sent.size() + to_send.size()) < o.clients) {
      auto index = budget.take();
      if (!index) {
        spent = true;
        break;
      }
      to_send.push_back(*index);
    }
  };
  stream->StartCall(reinterpret_cast<void*>(kStart));
  void* tag = nullptr;
  bool ok = false;
  if (!queue.Next(&tag, &ok) || !ok) fail("the stream did not start");
  recorder.begin();
  budget.start();
  refill();
  stream->Read(&answer, reinterpret_cast<void*>(kRead));
  next();
  bool finished = false;
  while (!finished && queue.Next(&tag, &ok)) {
    switch (reinterpret_cast<intptr_t>(tag)) {
      case kWrite:
        write_pending = false;
        if (ok) next();  // else the stream ended: the pending read says so, and Finish why
        break;
      case kRead: {
        if (!ok) {  // the server ended the stream before every answer: its status says why
          if (!done_writing) stream->Finish(&status, reinterpret_cast<void*>(kFinish));
          else fail("the stream ended with " + std::to_string(sent.size()) + " requests unanswered");
          break;
        }
        std::string message = to_string(answer);
        auto identifier = read_bytes_field(message, 1);
        if (!identifier) fail("an answer without its request's index: " + message.substr(0, 300));
        long index = std::stol(*identifier);
        auto found = sent.find(index);
        if (found == sent.end()) fail("an answer to request " + *identifier + ", which is not in flight");
        recorder.answered(found->second);
        sent.erase(found);
        recorder.check(index, message);
        refill();
        next();
        // Every answer in: no more reads; Finish once WritesDone completed too (its completion does it).
        if (!(spent && sent.empty() && to_send.empty())) stream->Read(&answer, reinterpret_cast<void*>(kRead));
        break;
      }
      case kWritesDone:
        stream->Finish(&status, reinterpret_cast<void*>(kFinish));
        break;
      case kFinish:
        if (!status.ok()) fail("the stream ended with code " + std::to_string(status.error_code()) + ": " + status.error_message());
        finished = true;
        break;
      default:
        fail("an unknown completion");
    }
  }
  if (!sent.empty()) fail(std::to_string(sent.size()) + " requests were left unanswered");
  recorder.print();
  queue.Shutdown();
  while (queue.Next(&tag, &ok)) {
  }
}

// --- HTTP/1.1 -----------------------------------------------------------------------------------------------

struct Connection {
  int fd = -1;
  bool closed = false;  // the server closed it (after an answer): the next request opens it again
  long index = 0;
  Clock::time_point sent;
  size_t written = 0;
  std::string input;
};

int connect_to(const std::string& target) {
  auto colon = target.rfind(':');
  if (colon == std::string::npos) fail("--target wants HOST:PORT");
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(target.substr(0, colon).c_str(), target.substr(colon + 1).c_str(), &hints, &found) != 0 || !found) {
    fail("cannot resolve " + target);
  }
  int fd = socket(found->ai_family, SOCK_STREAM, 0);
  if (fd < 0 || connect(fd, found->ai_addr, found->ai_addrlen) != 0) fail("cannot connect to " + target);
  freeaddrinfo(found);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

struct Response {
  int status = 0;
  std::string body;
  bool close = false;  // "Connection: close": the server closes the connection after it
};

// The answer once `input` holds a whole response (nullopt: not yet), taken out of `input`.
std::optional<Response> parse_response(std::string& input) {
  auto head_end = input.find("\r\n\r\n");
  if (head_end == std::string::npos) return std::nullopt;
  std::string head = input.substr(0, head_end);
  std::transform(head.begin(), head.end(), head.begin(), [](unsigned char c) { return std::tolower(c); });
  int status = 0;
  if (std::sscanf(head.c_str(), "http/1.%*d %d", &status) != 1) fail("not an HTTP response: " + head.substr(0, 200));
  size_t body_start = head_end + 4;
  auto header = [&](const std::string& name) -> std::optional<std::string> {
    auto at = head.find("\r\n" + name + ":");
    if (at == std::string::npos) return std::nullopt;
    auto begin = at + name.size() + 3;
    auto end = head.find("\r\n", begin);
    std::string value = head.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
    value.erase(0, value.find_first_not_of(' '));
    return value;
  };
  auto connection = header("connection");
  bool close = connection && connection->find("close") != std::string::npos;
  if (auto length = header("content-length")) {
    size_t size = std::stoul(*length);
    if (input.size() < body_start + size) return std::nullopt;
    std::string body = input.substr(body_start, size);
    input.erase(0, body_start + size);
    return Response{status, body, close};
  }
  auto encoding = header("transfer-encoding");
  if (!encoding || encoding->find("chunked") == std::string::npos) fail("an answer with neither a length nor chunks");
  std::string body;
  size_t position = body_start;
  while (true) {
    auto line_end = input.find("\r\n", position);
    if (line_end == std::string::npos) return std::nullopt;
    size_t size = std::stoul(input.substr(position, line_end - position), nullptr, 16);
    position = line_end + 2;
    if (size == 0) {
      auto end = input.find("\r\n\r\n", position - 2);  // no trailers: the chunk line's CRLF, then CRLF
      if (end == std::string::npos) return std::nullopt;
      input.erase(0, end + 4);
      return Response{status, body, close};
    }
    if (input.size() < position + size + 2) return std::nullopt;
    body.append(input, position, size);
    position += size + 2;
  }
}

void http(const Options& o) {
  int poller = epoll_create1(0);
  std::vector<Connection> connections(o.clients);
  Budget budget(o.requests, o.seconds, 2L * o.clients);
  Recorder recorder(o);
  int in_flight = 0;
  auto write_some = [&](Connection& c) {
    while (c.written < o.request.size()) {
      ssize_t n = ::send(c.fd, o.request.data() + c.written, o.request.size() - c.written, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN) return false;
        if (errno == EPIPE || errno == ECONNRESET) {
          fail("the server closed a connection before answering request " + std::to_string(c.index));
        }
        fail(std::string("cannot send: ") + std::strerror(errno));
      }
      c.written += static_cast<size_t>(n);
    }
    return true;
  };
  auto start = [&](Connection& c, long index) {
    int operation = EPOLL_CTL_MOD;
    if (c.closed) {
      close(c.fd);  // out of the poller already
      c.fd = connect_to(o.target);
      c.closed = false;
      c.input.clear();
      operation = EPOLL_CTL_ADD;
    }
    c.index = index;
    c.written = 0;
    c.sent = Clock::now();
    ++in_flight;
    epoll_event event{};
    event.data.ptr = &c;
    event.events = write_some(c) ? EPOLLIN : EPOLLIN | EPOLLOUT;
    if (epoll_ctl(poller, operation, c.fd, &event) != 0) fail(std::string("epoll_ctl: ") + std::strerror(errno));
  };
  for (auto& connection : connections) {  // connected before the clock starts, as the Python client's are
    connection.fd = connect_to(o.target);
    epoll_event event{};
    event.data.ptr = &connection;
    if (epoll_ctl(poller, EPOLL_CTL_ADD, connection.fd, &event) != 0) fail(std::strerror(errno));
  }
  recorder.begin();
  budget.start();
  for (auto& connection : connections) {
    if (auto index = budget.take()) start(connection, *index);
  }
  std::vector<epoll_event> events(o.clients);
  char buffer[65536];
  while (in_flight > 0) {
    int ready = epoll_wait(poller, events.data(), static_cast<int>(events.size()), 60000);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) fail("no answer within 60 s");
    for (int i = 0; i < ready; ++i) {
      auto& c = *static_cast<Connection*>(events[i].data.ptr);
      if ((events[i].events & EPOLLOUT) && write_some(c)) {
        epoll_event event{};
        event.data.ptr = &c;
        event.events = EPOLLIN;
        epoll_ctl(poller, EPOLL_CTL_MOD, c.fd, &event);
      }
      if (!(events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
      while (!c.closed) {
        ssize_t n = ::recv(c.fd, buffer, sizeof buffer, 0);
        if (n > 0) {
          c.input.append(buffer, static_cast<size_t>(n));
          continue;
        }
        if (n == 0 || errno == ECONNRESET) {  // closed, or reset under a request it had not read yet
          c.closed = true;
          break;
        }
        if (errno == EAGAIN) break;
        fail(std::string("cannot receive: ") + std::strerror(errno));
      }
      auto response = parse_response(c.input);
      if (!response) {
        if (c.closed) fail("the server closed a connection before answering request " + std::to_string(c.index));
        continue;
      }
      if (response->close && !c.closed) {
        shutdown(c.fd, SHUT_RDWR);
        c.closed = true;
      }
      if (c.closed) epoll_ctl(poller, EPOLL_CTL_DEL, c.fd, nullptr);  // EOF stays readable: not polled again
      --in_flight;
      if (response->status != 200) {
        fail("request " + std::to_string(c.index) + " answered " + std::to_string(response->status) + ": " +
             response->body.substr(0, 300));
      }
      recorder.answered(c.sent);
      recorder.check(c.index, response->body);
      if (auto index = budget.take()) start(c, *index);
    }
  }
  recorder.print();
  for (auto& connection : connections) {
    if (connection.fd >= 0) close(connection.fd);
  }
  close(poller);
}

}  // namespace

int main(int argc, char** argv) {
  Options options = parse(argc, argv);
  if (options.mode == "grpc-unary") grpc_unary(options);
  else if (options.mode == "grpc-stream") grpc_stream(options);
  else http(options);
  return 0;
}
