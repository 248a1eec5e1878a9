#ifndef OPENMMBG_WORKERPOOL_H_
#define OPENMMBG_WORKERPOOL_H_

#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace OpenMMBG {

/**
 * A fixed set of worker threads that all run the same task together. The
 * calling thread acts as worker 0, so a pool of one worker starts no thread
 * and a pool of W workers starts W - 1.
 */
class WorkerPool {
public:
    explicit WorkerPool(int numWorkers);
    /** Stops and joins the threads. */
    ~WorkerPool();
    WorkerPool(const WorkerPool&) = delete;
    WorkerPool& operator=(const WorkerPool&) = delete;

    int getNumWorkers() const { return numWorkers; }

    /**
     * Runs task(worker) for every worker index in parallel and returns when all
     * have finished. The first exception a task throws is rethrown here, after
     * every worker has finished. Not reentrant.
     */
    void run(const std::function<void(int)>& task);

private:
    void workerLoop(int worker);
    void runAndRecord(int worker);

    int numWorkers;
    std::vector<std::thread> threads;
    std::mutex mutex;
    std::condition_variable taskReady, taskDone;
    const std::function<void(int)>* task = nullptr;
    long generation = 0;  // incremented for every run(): wakes the workers
    int running = 0;      // background workers still busy with this generation
    bool stopping = false;
    std::exception_ptr firstError;
};

} // namespace OpenMMBG

#endif
