// grpc_bridge: the transport of bench/bare_grpc.py's `--transport native`, a Python extension that serves
// unary gRPC calls with gRPC C++ (Debian's libgrpc++, the load generator's) and hands each received request to
// Python's event loop, which answers it. It is the serving benchmark's measure of one design for sightd's
// front end: HTTP/2, framing and the call's life in C++ threads without the GIL, the handler in Python on
// asyncio as today. What it gains over grpc.aio (bench/bare_grpc.py's default transport) is what grpc.aio
// costs per call beyond the handler.
//
//   server = grpc_bridge.Server("127.0.0.1:0", [("grpc.max_receive_message_length", 64 << 20), ...])
//   server.port, server.fd            the bound port; an eventfd that is readable while calls wait
//   server.take() -> [(call, method, request: bytes)]   the calls received since the last take
//   server.finish(call, response: bytes) / server.fail(call, code, message)   answers a call: True, or
//                                     False for a call already answered (or failed by shutdown)
//   server.shutdown()                 cancels what is in flight and stops
//
//   server = grpc_bridge.Server(address, arguments, handler, workers)
//       the calls are not handed to the event loop but answered by `workers` threads of the bridge's own,
//       each calling handler(method, request: bytes) with the GIL: it returns the response's bytes, or a
//       (code, message) tuple for a status; an exception gives UNKNOWN. No event loop in the call's path.
//
// Every call is unary as far as the bridge is concerned: it reads one message, then the handler answers with
// one message or a status. A call whose client sends no message gets INTERNAL. `call` is an integer handle,
// only looked up, never trusted: the bridge keeps the calls it has not answered, and every one of them is
// answered exactly once (by Python, or UNAVAILABLE at shutdown), since gRPC's shutdown waits for them all. A
// call cancelled by its client is still answered (gRPC drops the answer).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

namespace py = pybind11;

namespace {

class Server;

// One call: reads the request, waits for Python's answer, writes it with the status, deletes itself when
// gRPC is done with it.
class Call final : public grpc::ServerGenericBidiReactor {
 public:
  Call(Server* server, grpc::GenericCallbackServerContext* context) : server_(server), context_(context) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override;

  void answer(const std::string& response) {
    grpc::Slice slice(response);
    response_ = grpc::ByteBuffer(&slice, 1);
    StartWriteAndFinish(&response_, grpc::WriteOptions(), grpc::Status::OK);
  }

  void fail(int code, const std::string& message) {
    Finish(grpc::Status(static_cast<grpc::StatusCode>(code), message));
  }

  void OnDone() override { delete this; }

  const std::string& method() const { return context_->method(); }
  grpc::ByteBuffer& request() { return request_; }

 private:
  Server* server_;
  grpc::GenericCallbackServerContext* context_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
};

class Service final : public grpc::CallbackGenericService {
 public:
  explicit Service(Server* server) : server_(server) {}
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* context) override {
    return new Call(server_, context);
  }

 private:
  Server* server_;
};

class Server {
 public:
  using Arguments = std::vector<std::tuple<std::string, std::variant<int, std::string>>>;

  Server(const std::string& address, const Arguments& arguments, py::object handler = py::none(), int workers = 0)
      : service_(this), handler_(std::move(handler)) {
    threaded_ = !handler_.is_none();  // read by gRPC's threads, which must not touch Python objects
    if (threaded_ && workers < 1) throw std::invalid_argument("workers must be >= 1 with a handler");
    fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd_ < 0) throw std::runtime_error("eventfd failed");
    grpc::ServerBuilder builder;
    for (const auto& [key, value] : arguments) {
      if (std::holds_alternative<int>(value)) {
        builder.AddChannelArgument(key, std::get<int>(value));
      } else {
        builder.AddChannelArgument(key, std::get<std::string>(value));
      }
    }
    builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &port_);
    builder.RegisterCallbackGenericService(&service_);
    server_ = builder.BuildAndStart();
    if (!server_ || port_ == 0) {
      close(fd_);
      throw std::runtime_error("cannot listen on " + address);
    }
    if (threaded_) {
      for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { work(); });
    }
  }

  ~Server() {
    shutdown();
    close(fd_);
  }

  int port() const { return port_; }
  int fd() const { return fd_; }

  // From gRPC's threads: a call whose request is in.
  void received(Call* call) {
    bool wake = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) {
        call->fail(static_cast<int>(grpc::StatusCode::UNAVAILABLE), "the server is stopping");
        return;
      }
      wake = waiting_.empty();
      waiting_.push_back(call);
      unanswered_.insert(call);
    }
    if (threaded_) {
      ready_.notify_one();
    } else if (wake) {
      const std::uint64_t one = 1;
      [[maybe_unused]] ssize_t written = write(fd_, &one, sizeof one);
    }
  }

  py::list take() {
    // Under the lock, so that no shutdown fails (and frees) a call while it is read.
    std::lock_guard<std::mutex> lock(mutex_);
    std::uint64_t count = 0;
    [[maybe_unused]] ssize_t got = read(fd_, &count, sizeof count);
    py::list taken;
    for (Call* call : waiting_) {
      grpc::Slice slice;
      call->request().DumpToSingleSlice(&slice);
      py::bytes request(reinterpret_cast<const char*>(slice.begin()), slice.size());
      taken.append(py::make_tuple(reinterpret_cast<std::uintptr_t>(call), call->method(), std::move(request)));
    }
    waiting_.clear();
    return taken;
  }

  bool finish(std::uintptr_t handle, const std::string& response) {
    Call* call = claim(handle);
    if (call != nullptr) call->answer(response);
    return call != nullptr;
  }

  bool fail(std::uintptr_t handle, int code, const std::string& message) {
    Call* call = claim(handle);
    if (call != nullptr) call->fail(code, message);
    return call != nullptr;
  }

  void shutdown() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    ready_.notify_all();
    if (!threads_.empty()) {  // they end the call in hand first
      py::gil_scoped_release release;
      for (std::thread& thread : threads_) thread.join();
      threads_.clear();
    }
    std::unordered_set<Call*> unanswered;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      unanswered.swap(unanswered_);
      waiting_.clear();
    }
    for (Call* call : unanswered) call->fail(static_cast<int>(grpc::StatusCode::UNAVAILABLE), "the server is stopping");
    if (server_) {
      py::gil_scoped_release release;
      server_->Shutdown(std::chrono::system_clock::now());
      server_.reset();
    }
  }

 private:
  // The call behind a handle, taken off the unanswered ones; null when it is not one of them.
  Call* claim(std::uintptr_t handle) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = unanswered_.find(reinterpret_cast<Call*>(handle));
    if (found == unanswered_.end()) return nullptr;
    Call* call = *found;
    unanswered_.erase(found);
    return call;
  }

  // A worker of the handler mode: takes the calls one by one and answers each with the handler's result.
  void work() {
    for (;;) {
      Call* call = nullptr;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        ready_.wait(lock, [this] { return stopping_ || !waiting_.empty(); });
        if (stopping_) return;
        call = waiting_.front();
        waiting_.pop_front();
        unanswered_.erase(call);  // this worker answers it, shutdown or not
      }
      grpc::Slice slice;
      call->request().DumpToSingleSlice(&slice);
      std::string response;
      int code = 0;
      std::string message;
      {
        py::gil_scoped_acquire gil;
        try {
          py::bytes request(reinterpret_cast<const char*>(slice.begin()), slice.size());
          py::object answer = handler_(call->method(), request);
          if (py::isinstance<py::bytes>(answer)) {
            response = answer.cast<std::string>();
          } else {
            auto [status, text] = answer.cast<std::tuple<int, std::string>>();
            code = status;
            message = std::move(text);
          }
        } catch (py::error_already_set& error) {
          code = static_cast<int>(grpc::StatusCode::UNKNOWN);
          message = std::string("Unexpected ") + error.what();
        } catch (const std::exception& error) {
          code = static_cast<int>(grpc::StatusCode::UNKNOWN);
          message = error.what();
        }
      }
      if (code == 0) {
        call->answer(response);
      } else {
        call->fail(code, message);
      }
    }
  }

  Service service_;
  py::object handler_;
  bool threaded_ = false;
  std::vector<std::thread> threads_;
  std::condition_variable ready_;
  bool stopping_ = false;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  int fd_ = -1;
  std::mutex mutex_;
  std::deque<Call*> waiting_;            // received, not yet taken
  std::unordered_set<Call*> unanswered_;  // received, not yet answered (waiting_ among them)
};

void Call::OnReadDone(bool ok) {
  if (ok) {
    server_->received(this);
  } else {
    Finish(grpc::Status(grpc::StatusCode::INTERNAL, "the call ended before its request"));
  }
}

}  // namespace

PYBIND11_MODULE(grpc_bridge, module) {
  module.doc() = "Unary gRPC calls served by gRPC C++ and answered from Python (bench/native/grpc_bridge.cc).";
  py::class_<Server>(module, "Server")
      .def(py::init<const std::string&, const Server::Arguments&, py::object, int>(), py::arg("address"),
           py::arg("arguments"), py::arg("handler") = py::none(), py::arg("workers") = 0)
      .def_property_readonly("port", &Server::port)
      .def_property_readonly("fd", &Server::fd)
      .def("take", &Server::take)
      .def("finish", &Server::finish, py::arg("call"), py::arg("response"))
      .def("fail", &Server::fail, py::arg("call"), py::arg("code"), py::arg("message"))
      .def("shutdown", &Server::shutdown);
}
