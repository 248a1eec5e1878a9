// ReplicaExchange, the exchange rule shared by TSF parallel tempering and
// MD-based replica exchange: alternating pairs, acceptance against the
// formula, walker and round-trip bookkeeping, state round trip, bad input.

#include "TestSupport.h"
#include "openmmbg/OpenMMEnergy.h"
#include "openmmbg/ReplicaExchange.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <openmm/OpenMMException.h>

#include <cmath>
#include <sstream>

using namespace OpenMMBG;
using namespace OpenMMBG::testing;

TEST(ReplicaExchange, PairsAlternateAndAcceptWithTheMetropolisRate) {
    const std::vector<double> ladder = {300.0, 330.0, 363.0, 400.0};
    ReplicaExchange exchange(ladder);
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(3);
    // Energies that make every log a = (beta_r - beta_r+1)(U_r - U_r+1) the same -0.5.
    std::vector<double> energies(4);
    for (int r = 0; r < 4; r++)
        energies[r] = 0.0;
    const int rounds = 40000;
    for (int round = 0; round < rounds; round++) {
        for (int r = 0; r + 1 < 4; r++) {
            const double dBeta = 1 / (OpenMMEnergy::BOLTZMANN * ladder[r]) - 1 / (OpenMMEnergy::BOLTZMANN * ladder[r + 1]);
            energies[r + 1] = energies[r] + 0.5 / dBeta;  // U_r - U_r+1 = -0.5 / dBeta
        }
        std::vector<int> accepted = exchange.exchange(energies, generator);
        for (int r : accepted)
            EXPECT_EQ(r % 2, round % 2) << "round " << round;  // even pairs, then odd pairs
    }
    EXPECT_EQ(exchange.getNumRounds(), rounds);
    const ExchangeStatistics& statistics = exchange.getStatistics();
    EXPECT_EQ(statistics.attempts[0], rounds / 2);
    EXPECT_EQ(statistics.attempts[1], rounds / 2);
    EXPECT_EQ(statistics.attempts[2], rounds / 2);
    const double expected = std::exp(-0.5);
    for (int pair = 0; pair < 3; pair++) {
        const double rate = (double) statistics.acceptances[pair] / (double) statistics.attempts[pair];
        EXPECT_NEAR(rate, expected, 4 * std::sqrt(expected * (1 - expected) / statistics.attempts[pair])) << pair;
    }
}

TEST(ReplicaExchange, WalkersAndRoundTrips) {
    ReplicaExchange exchange({300.0, 400.0, 500.0});
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(4);
    // The lower the temperature, the higher the energy: every exchange is accepted.
    const std::vector<double> downhill = {30.0, 20.0, 10.0};
    EXPECT_EQ(exchange.exchange(downhill, generator), std::vector<int>({0}));  // walker 0 to T_2
    EXPECT_EQ(exchange.getWalker(0), 1);
    EXPECT_EQ(exchange.getWalker(1), 0);
    EXPECT_EQ(exchange.exchange(downhill, generator), std::vector<int>({1}));  // walker 0 to T_3
    EXPECT_EQ(exchange.getWalker(2), 0);
    EXPECT_EQ(exchange.getStatistics().roundTrips, 0);
    // Walker 0 back down: T_3 -> T_2 -> T_1 completes its round trip.
    const std::vector<double> uphill = {10.0, 20.0, 30.0};
    const std::vector<double> swapBack = {10.0, 30.0, 20.0};
    exchange.exchange(uphill, generator);  // even pair: U_1 < U_2, rejected or not, walker 0 stays at T_3
    EXPECT_EQ(exchange.getWalker(2), 0);
    EXPECT_EQ(exchange.exchange(swapBack, generator), std::vector<int>({1}));
    EXPECT_EQ(exchange.getWalker(1), 0);
    EXPECT_EQ(exchange.exchange(downhill, generator), std::vector<int>({0}));
    EXPECT_EQ(exchange.getWalker(0), 0);
    EXPECT_EQ(exchange.getStatistics().roundTrips, 1);
    // Non-finite energies never exchange.
    const long long attempts = exchange.getStatistics().attempts[0];
    const long long accepted = exchange.getStatistics().acceptances[0];
    exchange.exchange({0.0, 0.0, 0.0}, generator);       // odd round
    exchange.exchange({INFINITY, 0.0, 0.0}, generator);  // even round: pair 0-1
    exchange.exchange({0.0, 0.0, 0.0}, generator);
    exchange.exchange({NAN, 0.0, 0.0}, generator);
    EXPECT_EQ(exchange.getStatistics().attempts[0], attempts + 2);
    EXPECT_EQ(exchange.getStatistics().acceptances[0], accepted);
}

TEST(ReplicaExchange, StateRoundTripAndReset) {
    ReplicaExchange exchange({300.0, 400.0, 500.0});
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(5);
    for (int round = 0; round < 7; round++)
        exchange.exchange({30.0, 20.0, 10.0}, generator);
    std::stringstream state;
    exchange.writeState(state);
    ReplicaExchange copy({300.0, 400.0, 500.0});
    copy.readState(state);
    EXPECT_EQ(copy.getNumRounds(), 7);
    for (int r = 0; r < 3; r++)
        EXPECT_EQ(copy.getWalker(r), exchange.getWalker(r));
    EXPECT_EQ(copy.getStatistics().attempts, exchange.getStatistics().attempts);
    EXPECT_EQ(copy.getStatistics().acceptances, exchange.getStatistics().acceptances);
    ReplicaExchange other({300.0, 400.0, 500.0, 600.0});
    state.seekg(0);
    EXPECT_THROW(other.readState(state), OpenMM::OpenMMException);
    exchange.resetStatistics();
    EXPECT_EQ(exchange.getStatistics().attempts, std::vector<long long>({0, 0}));
    EXPECT_EQ(exchange.getStatistics().roundTrips, 0);
    EXPECT_EQ(exchange.getNumRounds(), 7);  // the alternation goes on
}

TEST(ReplicaExchange, BadInputIsRefusedClearly) {
    expectMessage([] { ReplicaExchange({300.0}); }, "at least 2 temperatures");
    expectMessage([] { ReplicaExchange({300.0, 300.0}); }, "strictly increasing");
    expectMessage([] { ReplicaExchange({0.0, 300.0}); }, "positive");
    expectMessage([] { ReplicaExchange::geometricLadder(300.0, 200.0, 4); }, "highest > lowest");
    ReplicaExchange exchange({300.0, 600.0});
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(6);
    expectMessage([&] { exchange.exchange({1.0, 2.0, 3.0}, generator); }, "got 3 energies for 2 replicas");
    std::vector<double> ladder = ReplicaExchange::geometricLadder(300.0, 600.0, 5);
    EXPECT_EQ(ladder.front(), 300.0);
    EXPECT_EQ(ladder.back(), 600.0);
    EXPECT_NEAR(ladder[2], 300.0 * std::sqrt(2.0), 1e-9);
}
