"""Write examples/trajectories.jsonl: illustrative student streams for the bundled problems.

Nothing here is real student data. examples/submissions.jsonl holds attempts we wrote by hand (students s01-s09);
this script adds students s10-s33 on six problems by walking paths through attempts we also wrote by hand (typical
novice mistakes: wrong case handling, off-by-one ranges, missing base cases, printing instead of returning, a
syntax error), with seeded variation in indentation and spacing. Run it from the repository root:

    python3 examples/make_trajectories.py
"""

import json
import random
import re
from datetime import datetime, timedelta, timezone

ATTEMPTS = {
    "sum-digits": {
        "A0": "def sum_digits(n):\n    return sum(n)\n",
        "A1": "def sum_digits(n):\n    total = 0\n    while n > 0:\n        total = total + n % 10\n        n = n / 10\n    return total\n",
        "A2": "def sum_digits(n):\n    total = 0\n    while n > 0:\n        total = total + n % 10\n        n = n // 10\n    return total\n",
        "B0": "def sum_digits(n):\n    s = 0\n    for d in n:\n        s += d\n    return s\n",
        "B1": "def sum_digits(n):\n    s = 0\n    for d in str(n):\n        s += d\n    return s\n",
        "B2": "def sum_digits(n):\n    s = 0\n    for d in str(n):\n        s += int(d)\n    return s\n",
        "C0": "def sum_digits(n)\n    return sum(int(d) for d in str(n))\n",
        "C1": "def sum_digits(n):\n    return sum(int(d) for d in str(n))\n",
    },
    "count-vowels": {
        "A0": "def count_vowels(s):\n    count = 0\n    for c in s:\n        if c in 'aeiou':\n            count += 1\n    return count\n",
        "A1": "def count_vowels(s):\n    count = 0\n    for c in s.lower():\n        if c in 'aeiou':\n            count += 1\n    return count\n",
        "B0": "def count_vowels(s):\n    return s.count('a') + s.count('e') + s.count('i') + s.count('o') + s.count('u')\n",
        "B1": "def count_vowels(s):\n    s = s.lower()\n    return s.count('a') + s.count('e') + s.count('i') + s.count('o') + s.count('u')\n",
        "C0": "def count_vowels(s):\n    vowels = ['a', 'e', 'i', 'o', 'u']\n    n = 0\n    for letter in s.lower():\n        if letter == vowels:\n            n += 1\n    return n\n",
        "C1": "def count_vowels(s):\n    vowels = ['a', 'e', 'i', 'o', 'u']\n    n = 0\n    for letter in s.lower():\n        if letter in vowels:\n            n += 1\n    return n\n",
        "D0": "def count_vowels(s):\n    for c in s:\n        if c in 'aeiouAEIOU':\n            count += 1\n    return count\n",
    },
    "factorial": {
        "A0": "def factorial(n):\n    return n * factorial(n - 1)\n",
        "A1": "def factorial(n):\n    if n == 1:\n        return 1\n    return n * factorial(n - 1)\n",
        "A2": "def factorial(n):\n    if n == 0:\n        return 1\n    return n * factorial(n - 1)\n",
        "B0": "def factorial(n):\n    result = 1\n    for i in range(n):\n        result *= i\n    return result\n",
        "B1": "def factorial(n):\n    result = 1\n    for i in range(1, n + 1):\n        result *= i\n    return result\n",
        "C0": "def factorial(n):\n    if n <= 1:\n        return 1\n    else:\n        return n * factorial(n - 1)\n",
    },
    "palindrome": {
        "A0": "def is_palindrome(text):\n    return text == text[::-1]\n",
        "A1": "def is_palindrome(text):\n    text = text.lower()\n    return text == text[::-1]\n",
        "A2": "def is_palindrome(text):\n    letters = [c.lower() for c in text if c.isalpha()]\n    return letters == letters[::-1]\n",
        "B0": "def is_palindrome(text):\n    for i in range(len(text)):\n        if text[i] != text[len(text) - i]:\n            return False\n    return True\n",
        "B1": "def is_palindrome(text):\n    for i in range(len(text)):\n        if text[i] != text[len(text) - i - 1]:\n            return False\n    return True\n",
        "B2": "def is_palindrome(text):\n    t = ''.join(c.lower() for c in text if c.isalnum())\n    for i in range(len(t)):\n        if t[i] != t[len(t) - i - 1]:\n            return False\n    return True\n",
    },
    "is-prime": {
        "A0": "def is_prime(n):\n    for i in range(2, n):\n        if n % i == 0:\n            return False\n    return True\n",
        "A1": "def is_prime(n):\n    if n < 2:\n        return False\n    for i in range(2, n):\n        if n % i == 0:\n            return False\n    return True\n",
        "B0": "def is_prime(n):\n    for i in range(2, n):\n        if n % i == 0:\n            return False\n        else:\n            return True\n",
        "B1": "def is_prime(n):\n    if n < 2:\n        return False\n    for i in range(2, n):\n        if n % i == 0:\n            return False\n        else:\n            return True\n",
        "C0": "def is_prime(n):\n    if n < 2:\n        return False\n    i = 2\n    while i * i <= n:\n        if n % i == 0:\n            return False\n        i += 1\n    return True\n",
    },
    "fizzbuzz": {
        "A0": "def fizzbuzz(n):\n    result = []\n    for i in range(1, n + 1):\n        if i % 3 == 0:\n            result.append('Fizz')\n        elif i % 5 == 0:\n            result.append('Buzz')\n        elif i % 15 == 0:\n            result.append('FizzBuzz')\n        else:\n            result.append(str(i))\n    return result\n",
        "A1": "def fizzbuzz(n):\n    result = []\n    for i in range(1, n + 1):\n        if i % 15 == 0:\n            result.append('FizzBuzz')\n        elif i % 3 == 0:\n            result.append('Fizz')\n        elif i % 5 == 0:\n            result.append('Buzz')\n        else:\n            result.append(str(i))\n    return result\n",
        "B0": "def fizzbuzz(n):\n    for i in range(1, n + 1):\n        if i % 15 == 0:\n            print('FizzBuzz')\n        elif i % 3 == 0:\n            print('Fizz')\n        elif i % 5 == 0:\n            print('Buzz')\n        else:\n            print(i)\n",
        "B1": "def fizzbuzz(n):\n    out = []\n    for i in range(n):\n        if i % 15 == 0:\n            out.append('FizzBuzz')\n        elif i % 3 == 0:\n            out.append('Fizz')\n        elif i % 5 == 0:\n            out.append('Buzz')\n        else:\n            out.append(str(i))\n    return out\n",
        "B2": "def fizzbuzz(n):\n    out = []\n    for i in range(1, n + 1):\n        if i % 15 == 0:\n            out.append('FizzBuzz')\n        elif i % 3 == 0:\n            out.append('Fizz')\n        elif i % 5 == 0:\n            out.append('Buzz')\n        else:\n            out.append(str(i))\n    return out\n",
    },
}

# How students move through the attempts of each problem; a path that ends on a wrong attempt is a student who
# gave up.
PATHS = {
    "sum-digits": [["A0", "A1", "A2"], ["B0", "B1", "B2"], ["C0", "C1"], ["A1", "A2"], ["B1", "B2"], ["A0", "B1", "B2"], ["B0", "B1"]],
    "count-vowels": [["A0", "A1"], ["B0", "B1"], ["C0", "C1"], ["D0", "A0", "A1"], ["C0", "C0", "C1"], ["A0", "A0"]],
    "factorial": [["A0", "A1", "A2"], ["B0", "B1"], ["C0"], ["A1", "A2"], ["A0", "A2"], ["A1", "A1", "A2"]],
    "palindrome": [["A0", "A1", "A2"], ["B0", "B1", "B2"], ["A0", "A2"], ["B0", "B1"], ["A1", "A2"], ["A0", "A1"]],
    "is-prime": [["A0", "A1"], ["B0", "B1", "A1"], ["C0"], ["A0", "B1", "A1"], ["B0", "B0", "B1"], ["A0", "A1"]],
    "fizzbuzz": [["A0", "A1"], ["B0", "B1", "B2"], ["B0", "A0", "A1"], ["A0", "A0", "A1"], ["B1", "B2"]],
}


def vary(code, style):
    """The same program in one student's habits: two-space indentation, no spaces around `=` or `+`."""
    if style["two_spaces"]:
        code = re.sub(r"^((?:    )+)", lambda m: "  " * (len(m.group(1)) // 4), code, flags=re.M)
    if style["tight"]:
        code = code.replace(" = ", "=").replace(" + ", "+")
    return code


def main():
    rows = []
    with open("examples/submissions.jsonl") as f:
        for i, line in enumerate(f):
            r = json.loads(line)
            student, problem, attempt = re.match(r"(s\d+)-(.+)-(\d+)$", r["id"]).groups()
            t = datetime(2025, 9, 1, 9, tzinfo=timezone.utc) + timedelta(minutes=7 * i)
            rows.append({"student": student, "problem": problem, "time": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
                         "attempt": int(attempt), "code": r["code"]})
    rng = random.Random(2025)
    problems = sorted(ATTEMPTS)
    for number in range(10, 34):
        student = f"s{number:02d}"
        style = {"two_spaces": rng.random() < 0.25, "tight": rng.random() < 0.3}
        t = datetime(2025, 9, 2, 8, tzinfo=timezone.utc) + timedelta(minutes=rng.randrange(0, 8 * 60))
        for problem in rng.sample(problems, 3):
            path = rng.choice(PATHS[problem])
            for attempt, key in enumerate(path, start=1):
                rows.append({"student": student, "problem": problem, "time": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
                             "attempt": attempt, "code": vary(ATTEMPTS[problem][key], style)})
                t += timedelta(minutes=rng.randrange(2, 15))
            t += timedelta(minutes=rng.randrange(10, 60))
    with open("examples/trajectories.jsonl", "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    print(f"{len(rows)} rows -> examples/trajectories.jsonl")


main()
