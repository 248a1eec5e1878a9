#include "openmmbg/internal/WorkerPool.h"

#include <openmm/OpenMMException.h>

namespace OpenMMBG {

WorkerPool::WorkerPool(int numWorkers) : numWorkers(numWorkers) {
    if (numWorkers < 1)
        throw OpenMM::OpenMMException("WorkerPool: the number of workers must be at least 1");
    for (int worker = 1; worker < numWorkers; worker++)
        threads.emplace_back(&WorkerPool::workerLoop, this, worker);
}

WorkerPool::~WorkerPool() {
    {
        std::lock_guard<std::mutex> lock(mutex);
        stopping = true;
    }
    taskReady.notify_all();
    for (std::thread& thread : threads)
        thread.join();
}

void WorkerPool::runAndRecord(int worker) {
    try {
        (*task)(worker);
    } catch (...) {
        std::lock_guard<std::mutex> lock(mutex);
        if (!firstError)
            firstError = std::current_exception();
    }
}

void WorkerPool::run(const std::function<void(int)>& newTask) {
    {
        std::lock_guard<std::mutex> lock(mutex);
        task = &newTask;
        firstError = nullptr;
        running = numWorkers - 1;
        generation++;
    }
    taskReady.notify_all();
    runAndRecord(0);
    std::unique_lock<std::mutex> lock(mutex);
    taskDone.wait(lock, [this] { return running == 0; });
    task = nullptr;
    if (firstError)
        std::rethrow_exception(firstError);
}

void WorkerPool::workerLoop(int worker) {
    long seen = 0;
    while (true) {
        {
            std::unique_lock<std::mutex> lock(mutex);
            taskReady.wait(lock, [&] { return stopping || generation != seen; });
            if (stopping)
                return;
            seen = generation;
        }
        runAndRecord(worker);
        bool last;
        {
            std::lock_guard<std::mutex> lock(mutex);
            last = (--running == 0);
        }
        if (last)
            taskDone.notify_one();
    }
}

} // namespace OpenMMBG
